// Package natstest gives tests their own real, embedded JetStream server.
// Every integration test in the project uses it; none depends on a server
// started by hand. It may only be imported from tests.
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/provision"
)

// Server is a fresh embedded JetStream server for one test or package.
type Server struct {
	*embedded.Server
	URL string
}

// Start starts a server on a free loopback port with storage under
// t.TempDir() and stops it in t.Cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, embedded.Config{})
}

// StartWith is Start with cfg's settings (MaxPayload, say); its StoreDir
// and Port are set by StartWith.
func StartWith(tb testing.TB, cfg embedded.Config) *Server {
	tb.Helper()
	cfg.StoreDir, cfg.Port = tb.TempDir(), -1
	s, err := embedded.Start(cfg)
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return &Server{Server: s, URL: s.ClientURL()}
}

// StartProvisioned is Start followed by provision.Ensure with cfg.
func StartProvisioned(tb testing.TB, cfg provision.Config) *Server {
	tb.Helper()
	s := Start(tb)
	_, js := s.Connect(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := provision.Ensure(ctx, js, cfg); err != nil {
		tb.Fatalf("natstest: provision: %v", err)
	}
	return s
}

// Connect opens a connection closed in t.Cleanup.
func (s *Server) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.URL, nats.MaxReconnects(-1))
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

// WaitFor polls cond every few milliseconds until it is true or timeout
// passes, then fails the test with msg.
func WaitFor(tb testing.TB, timeout time.Duration, msg string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("natstest: timed out after %s waiting for %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Recv waits for a value on ch for at most timeout, failing the test otherwise.
func Recv[T any](tb testing.TB, ch <-chan T, timeout time.Duration) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		tb.Fatalf("natstest: nothing received within %s", timeout)
		var zero T
		return zero
	}
}
