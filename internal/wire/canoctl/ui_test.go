package canoctl_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
)

// TestUI runs `canoctl ui` as a built binary: it prints where the dashboard
// listens, serves its runs page (holding as many runs as
// --http-index-max-runs says), refuses an address off loopback without
// credentials or a bad cap, and stops cleanly on SIGINT.
func TestUI(t *testing.T) {
	t.Parallel()
	b := setup(t)

	r := b.canoctl(t, "ui", "--addr", "0.0.0.0:0")
	oneErrorLine(t, r, 1, "ui: --addr 0.0.0.0:0 is not loopback: serving there needs --http-token (or CANO_HTTP_TOKEN), or --http-user and --http-password")
	require.NotContains(t, r.stderr, "Config.", "canoctl's flags, not the library's fields")
	r = b.canoctl(t, "ui", "--addr", "0.0.0.0:0", "--http-user", "ada")
	oneErrorLine(t, r, 1, "ui: give both --http-user and --http-password (or CANO_HTTP_PASSWORD), or neither")
	r = b.canoctl(t, "ui", "--http-index-max-runs", "-2")
	oneErrorLine(t, r, 1, "-http-index-max-runs")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 {
		_, err := b.cl.Run(ctx, "echo", &client.TriggerOpts{Input: map[string]any{"n": 1}})
		require.NoError(t, err)
	}

	cmd := exec.Command(bin, "ui", "--addr", "127.0.0.1:0", "--http-index-max-runs", "1")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, b.env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("canoctl ui printed no address within 30s")
	}
	require.True(t, strings.HasPrefix(line, "dashboard: open http://127.0.0.1:"), line)
	url := strings.Fields(strings.TrimPrefix(line, "dashboard: open "))[0]

	resp, err := http.Get(url + "runs")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, string(body), "Runs")
	require.Contains(t, string(body), "are beyond the runs index", "--http-index-max-runs 1 holds one of the two runs")
	require.Equal(t, 1, strings.Count(string(body), `<tr id="run-`), "one run held")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "canoctl ui exits 0 on SIGINT")
	case <-time.After(30 * time.Second):
		t.Fatal("canoctl ui did not stop within 30s of SIGINT")
	}
}
