package natstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/proctest"
	"github.com/cano-nats/cano/pkg/embedded"
)

// NATSServerPkg is the nats-server main package, a dependency in go.mod:
// the version the project builds against is the version the crash tests
// kill.
const NATSServerPkg = "github.com/nats-io/nats-server/v2"

// ServerProcess is nats-server running as its own OS process, so a test
// can SIGKILL it (a crash: nothing flushed, nothing said to clients) and
// start it again on the same store directory and port.
type ServerProcess struct {
	tb   testing.TB
	bin  string
	conf string
	// Port is the client port, the same across restarts.
	Port int
	// StoreDir is the JetStream store, kept across restarts.
	StoreDir string
	// URL is the client URL.
	URL string

	proc *proctest.Proc
	gen  int
}

// StartProcess builds nats-server (once per test binary), starts it with
// JetStream on a free loopback port and a store under t.TempDir(), with the
// embedded server's limits (max payload [embedded.MaxPayloadDefault]), and
// waits until JetStream answers. The process is killed in t.Cleanup.
func StartProcess(tb testing.TB) *ServerProcess {
	tb.Helper()
	dir := tb.TempDir()
	s := &ServerProcess{tb: tb, bin: proctest.BuildAs(tb, NATSServerPkg, "nats-server"),
		Port: freePorts(tb, 1)[0], StoreDir: filepath.Join(dir, "store"), conf: filepath.Join(dir, "nats.conf")}
	s.URL = fmt.Sprintf("nats://127.0.0.1:%d", s.Port)
	conf := fmt.Sprintf("server_name: fault-%d\nlisten: 127.0.0.1:%d\nmax_payload: %d\n"+
		"jetstream {\n  store_dir: %q\n  max_memory_store: %d\n  max_file_store: %d\n}\n",
		s.Port, s.Port, embedded.MaxPayloadDefault, s.StoreDir, 1<<30, int64(64)<<30)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	s.Restart()
	return s
}

// Restart starts the server (again) on its store and port and waits until
// JetStream answers; the server must not be running.
func (s *ServerProcess) Restart() {
	s.tb.Helper()
	s.gen++
	s.proc = proctest.Start(s.tb, fmt.Sprintf("nats-server-%d", s.gen), s.bin, "-c", s.conf)
	s.WaitReady(30 * time.Second)
}

// WaitReady waits until the server accepts connections and its JetStream
// API answers, or fails the test after timeout with the server's output.
func (s *ServerProcess) WaitReady(timeout time.Duration) {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if s.proc.Exited() {
			s.tb.Fatalf("natstest: nats-server exited:\n%s", s.proc.Output())
		}
		if last = s.ping(); last == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.tb.Fatalf("natstest: nats-server on port %d not ready within %s: %v\n%s", s.Port, timeout, last, s.proc.Output())
}

func (s *ServerProcess) ping() error {
	nc, err := nats.Connect(s.URL, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// Kill SIGKILLs the server: whatever it had not written to its store is
// lost, as in a crash.
func (s *ServerProcess) Kill() { s.proc.Kill() }

// Stop stops the server cleanly (SIGINT: it closes its clients and writes
// its store out), waiting up to timeout before it SIGKILLs it and fails the
// test.
func (s *ServerProcess) Stop(timeout time.Duration) {
	s.tb.Helper()
	if err := s.proc.Stop(timeout); err != nil {
		s.tb.Fatalf("natstest: stopping nats-server: %v\n%s", err, s.proc.Output())
	}
}

// Output is what the current server process printed so far.
func (s *ServerProcess) Output() string { return s.proc.Output() }

// Connect opens a connection that reconnects for ever (every 50 ms),
// closed in t.Cleanup.
func (s *ServerProcess) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.RetryOnFailedConnect(true))
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}
