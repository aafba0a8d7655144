package health_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/health"
	"github.com/cano-nats/cano/pkg/embedded"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHandlers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		check    health.CheckFunc
		set      bool
		path     string
		wantCode int
		wantBody string
	}{
		{"live before start", nil, false, "/healthz", 200, "ok\n"},
		{"live when not ready", func(context.Context) error { return errors.New("down") }, true, "/healthz", 200, "ok\n"},
		{"not ready before SetReady", nil, false, "/readyz", 503, "not ready: starting: connecting to NATS, then creating or waiting for the streams and starting (the log says which step it is on)\n"},
		{"ready", func(context.Context) error { return nil }, true, "/readyz", 200, "ready\n"},
		{"not ready with reason", func(context.Context) error { return errors.New("not connected to NATS") }, true, "/readyz", 503, "not ready: not connected to NATS\n"},
		{"joined reasons on one line", health.All(
			func(context.Context) error { return errors.New("a") },
			nil,
			func(context.Context) error { return nil },
			func(context.Context) error { return errors.New("b") }), true, "/readyz", 503, "not ready: a; b\n"},
		{"all passing", health.All(func(context.Context) error { return nil }), true, "/readyz", 200, "ready\n"},
		{"reset to starting", nil, true, "/readyz", 503, "not ready: starting: connecting to NATS, then creating or waiting for the streams and starting (the log says which step it is on)\n"},
		{"unknown path", nil, false, "/nope", 404, "404 page not found\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := health.New(health.Config{})
			if tc.set {
				s.SetReady(tc.check)
			}
			code, body := get(t, s.Handler(), tc.path)
			require.Equal(t, tc.wantCode, code)
			require.Equal(t, tc.wantBody, body)
		})
	}
}

func TestCheckTimeout(t *testing.T) {
	t.Parallel()
	s := health.New(health.Config{CheckTimeout: 50 * time.Millisecond})
	s.SetReady(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	code, body := get(t, s.Handler(), "/readyz")
	require.Equal(t, 503, code)
	require.Contains(t, body, "deadline exceeded")
}

// TestCheckThatDoesNotReturn: a check blocked past its context (a NATS
// call waiting for the client library's lock while it dials a server that
// is gone) still gets /readyz a 503 in time, and a probe meanwhile waits
// for the check in flight instead of starting another.
func TestCheckThatDoesNotReturn(t *testing.T) {
	t.Parallel()
	s := health.New(health.Config{CheckTimeout: 50 * time.Millisecond})
	release := make(chan struct{})
	var calls atomic.Int32
	s.SetReady(func(context.Context) error {
		calls.Add(1)
		<-release // ignores its context
		return nil
	})
	answered := make(chan struct{})
	var code int
	var body string
	go func() {
		defer close(answered)
		code, body = get(t, s.Handler(), "/readyz")
	}()
	select {
	case <-answered:
	case <-time.After(30 * time.Second): // a guard against a hang, not a timing goal
		t.Fatal("/readyz did not answer while its check was blocked")
	}
	require.Equal(t, 503, code)
	require.Contains(t, body, "not ready: the readiness check did not answer within 50ms")
	code, _ = get(t, s.Handler(), "/readyz")
	require.Equal(t, 503, code)
	require.Equal(t, int32(1), calls.Load(), "a second probe started a second check while the first was blocked")

	close(release)
	waitCode(t, func() (int, string) { return get(t, s.Handler(), "/readyz") }, 200, "ready")
}

func TestServerAndProbe(t *testing.T) {
	t.Parallel()
	s := health.New(health.Config{Addr: "127.0.0.1:0"})
	s.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "x 1\n") }))
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	base := "http://" + s.Addr()

	require.NoError(t, health.Probe(context.Background(), base+"/healthz"))
	err := health.Probe(context.Background(), base+"/readyz")
	require.ErrorContains(t, err, "503 Service Unavailable: not ready: starting")
	s.SetReady(func(context.Context) error { return nil })
	require.NoError(t, health.Probe(context.Background(), base+"/readyz"))
	require.NoError(t, health.Probe(context.Background(), base+"/metrics"))

	// A second listener on the same address fails with what to do.
	other := health.New(health.Config{Addr: s.Addr()})
	require.ErrorContains(t, other.Start(context.Background()), "choose a free address")

	require.NoError(t, s.Stop(context.Background()))
	require.NoError(t, s.Stop(context.Background()))
	require.ErrorIs(t, s.Start(context.Background()), health.ErrClosed)
	require.Error(t, health.Probe(context.Background(), base+"/healthz"))
	require.ErrorContains(t, health.Probe(context.Background(), "::bad"), "-healthcheck")
}

// TestReadinessFollowsTheServer: /readyz flips to 503 when the embedded
// server goes away and back to 200 when it returns with its streams.
func TestReadinessFollowsTheServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
	require.NoError(t, err)
	port := srv.Port()
	t.Cleanup(func() { srv.Stop() })

	nc, err := natsConnect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)

	s := health.New(health.Config{})
	s.SetReady(health.All(health.Connected(nc), health.Streams(js, []string{"HEALTH_TEST", "KV_health"})))
	ready := func() (int, string) { return get(t, s.Handler(), "/readyz") }

	code, body := ready()
	require.Equal(t, 503, code)
	require.Contains(t, body, "missing streams or buckets: HEALTH_TEST, KV_health")

	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "HEALTH_TEST", Subjects: []string{"health.test"}})
	require.NoError(t, err)
	_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "health"})
	require.NoError(t, err)
	code, body = ready()
	require.Equal(t, 200, code, body)

	srv.Stop()
	waitCode(t, ready, 503, "not connected to NATS")

	srv, err = embedded.Start(embedded.Config{StoreDir: dir, Port: port})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop() })
	waitCode(t, ready, 200, "ready")
}

func waitCode(t *testing.T, ready func() (int, string), want int, wantBody string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var code int
	var body string
	for time.Now().Before(deadline) {
		code, body = ready()
		if code == want && strings.Contains(body, wantBody) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("/readyz did not answer %d %q within 30s; last %d %q", want, wantBody, code, body)
}
