package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This file drives headless Chromium over the DevTools protocol with a
// minimal websocket client written on a plain TCP connection (RFC 6455:
// masked client frames, unmasked server frames, fragmentation, ping),
// so the test needs no new module.

// wsConn is a client websocket connection carrying text messages.
type wsConn struct {
	c  net.Conn
	br *bufio.Reader
	wm sync.Mutex // guards writes
}

func wsDial(rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(key))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	return &wsConn{c: c, br: br}, nil
}

func (w *wsConn) send(msg []byte) error {
	w.wm.Lock()
	defer w.wm.Unlock()
	return w.writeFrame(0x1, msg)
}

func (w *wsConn) writeFrame(op byte, p []byte) error {
	hdr := []byte{0x80 | op}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	mask := make([]byte, 4)
	_, _ = rand.Read(mask)
	hdr = append(hdr, mask...)
	body := make([]byte, len(p))
	for i := range p {
		body[i] = p[i] ^ mask[i%4]
	}
	_, err := w.c.Write(append(hdr, body...))
	return err
}

// read returns the next whole text message.
func (w *wsConn) read() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0F
		n := uint64(h[1] & 0x7F)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(w.br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var mask []byte
		if h[1]&0x80 != 0 {
			mask = make([]byte, 4)
			if _, err := io.ReadFull(w.br, mask); err != nil {
				return nil, err
			}
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(w.br, p); err != nil {
			return nil, err
		}
		if mask != nil {
			for i := range p {
				p[i] ^= mask[i%4]
			}
		}
		switch op {
		case 0x8:
			return nil, io.EOF
		case 0x9:
			w.wm.Lock()
			err := w.writeFrame(0xA, p)
			w.wm.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		case 0xA:
			continue
		}
		msg = append(msg, p...)
		if fin {
			return msg, nil
		}
	}
}

// browser is one headless Chromium with one page under DevTools control.
type browser struct {
	t    *testing.T
	ws   *wsConn
	mu   sync.Mutex // guards next, wait
	next int
	wait map[int]chan cdpReply
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// findChromium returns the browser binary, or "" with why there is none.
func findChromium() (string, string) {
	if p := os.Getenv("CANO_CHROMIUM"); p != "" {
		return p, ""
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, ""
		}
	}
	return "", "no chromium binary on PATH (install Debian's chromium package: apt-get install -y chromium, or set CANO_CHROMIUM)"
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin, why := findChromium()
	if bin == "" {
		t.Skip("browser test skipped: " + why)
	}
	// The profile directory is ours to remove: Chromium's helper processes
	// (renderer, zygote) can still be writing to it just after the main
	// process is gone, which t.TempDir's cleanup reports as a failure.
	profile, err := os.MkdirTemp("", "cano-chromium-")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
		"--user-data-dir="+profile, "--window-size=1280,900", "about:blank")
	// Its own process group, so stopping it stops its helpers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		// Bounded: a helper that outlived the group kill lets go within moments.
		deadline := time.Now().Add(10 * time.Second)
		for err := os.RemoveAll(profile); err != nil; err = os.RemoveAll(profile) {
			if time.Now().After(deadline) {
				t.Logf("browser profile %s not removed: %v", profile, err)
				return
			}
			time.Sleep(50 * time.Millisecond) // polling a directory's removal, bounded above
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	var browserURL string
	select {
	case browserURL = <-found:
	case <-time.After(60 * time.Second):
		t.Fatal("chromium did not print its DevTools address within 60s")
	}
	u, err := url.Parse(browserURL)
	require.NoError(t, err)
	// The page target chromium opened with about:blank.
	var targets []struct {
		Type, WebSocketDebuggerURL string
	}
	resp, err := http.Get("http://" + u.Host + "/json/list")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&targets))
	resp.Body.Close()
	var pageURL string
	for _, tg := range targets {
		if tg.Type == "page" {
			pageURL = tg.WebSocketDebuggerURL
		}
	}
	require.NotEmpty(t, pageURL, "no page target in %+v", targets)
	ws, err := wsDial(pageURL)
	require.NoError(t, err)
	t.Cleanup(func() { ws.c.Close() })
	b := &browser{t: t, ws: ws, wait: map[int]chan cdpReply{}}
	go b.readLoop()
	b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

func (b *browser) readLoop() {
	for {
		msg, err := b.ws.read()
		if err != nil {
			return
		}
		var m struct {
			ID int `json:"id"`
			cdpReply
		}
		if json.Unmarshal(msg, &m) != nil || m.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.wait[m.ID]
		delete(b.wait, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

// call sends one DevTools command and decodes its result into out.
func (b *browser) call(method string, params any, out any) {
	b.t.Helper()
	require.NoError(b.t, b.try(method, params, out), method)
}

func (b *browser) try(method string, params any, out any) error {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpReply, 1)
	b.wait[id] = ch
	b.mu.Unlock()
	data, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err := b.ws.send(data); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return errors.New(r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("%s: no reply within 60s", method)
	}
}

// eval evaluates expr in the page and returns its JSON value.
func (b *browser) eval(expr string) json.RawMessage {
	b.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	if r.ExceptionDetails != nil {
		b.t.Fatalf("eval %q: %s", expr, r.ExceptionDetails.Text)
	}
	return r.Result.Value
}

// waitTrue polls expr (a bounded deadline) until it is true.
func (b *browser) waitTrue(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if bytes.Equal(b.eval(expr), []byte("true")) {
			return
		}
		if time.Now().After(deadline) {
			html := b.eval("document.body ? document.body.innerText : ''")
			b.t.Fatalf("%s: not true within 60s: %s\npage: %s", what, expr, html)
		}
		time.Sleep(50 * time.Millisecond) // polling the page's DOM, bounded above
	}
}

// act clicks (click is a JavaScript expression) and waits, within one
// bounded deadline, until done is true. An action whose fetch failed at
// the network level is clicked again: Chromium drops the requests in
// flight with ERR_NETWORK_CHANGED when something else on the machine adds
// or removes a network interface (another package's test bringing a
// Docker network up), and the page then says "Failed to fetch". The
// actions are safe to repeat (a second trigger starts one more run).
func (b *browser) act(what, click, done string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	failed := `((document.getElementById("msg") || {}).textContent || "").includes("Failed to fetch")`
	b.eval(click)
	for !bytes.Equal(b.eval(done), []byte("true")) {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not true within 60s: %s\npage: %s", what, done, b.eval("document.body ? document.body.innerText : ''"))
		}
		if bytes.Equal(b.eval(failed), []byte("true")) {
			b.t.Logf("%s: the action's request failed in the network (Failed to fetch); clicking again", what)
			b.eval(`document.getElementById("msg").textContent = ""`)
			b.eval(click)
		}
		time.Sleep(50 * time.Millisecond) // polling the page's DOM, bounded above
	}
}

// open navigates and waits for the page and its live connection. A
// navigation that ends on Chromium's error page (ERR_NETWORK_CHANGED when
// something else on the machine adds or removes a network interface) is
// retried, within one bounded deadline.
func (b *browser) open(u string) {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	loaded := `document.readyState === "complete" && location.href === ` + jsString(u)
	failed := `location.href.startsWith("chrome-error:")`
	for {
		b.call("Page.navigate", map[string]any{"url": u}, nil)
		for !bytes.Equal(b.eval(loaded), []byte("true")) && !bytes.Equal(b.eval(failed), []byte("true")) {
			if time.Now().After(deadline) {
				b.t.Fatalf("load %s: not loaded within 90s: %s", u, b.eval("document.body ? document.body.innerText : ''"))
			}
			time.Sleep(50 * time.Millisecond) // polling the page, bounded above
		}
		if bytes.Equal(b.eval(loaded), []byte("true")) {
			break
		}
		b.t.Logf("load %s: %s; retrying", u, b.eval("document.body ? document.body.innerText : ''"))
	}
	b.waitTrue("live "+u, `document.body.getAttribute("data-live-ready") === "1"`)
}

// screenshot writes a PNG of the whole page to path.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	var r struct {
		Data string `json:"data"`
	}
	b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	require.NoError(b.t, err)
	require.NoError(b.t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(b.t, os.WriteFile(path, png, 0o644))
	b.t.Logf("screenshot: %s", path)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (b *browser) text(expr string) string {
	b.t.Helper()
	var s string
	require.NoError(b.t, json.Unmarshal(b.eval(expr), &s), expr)
	return strings.TrimSpace(s)
}
