package app_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/app"
	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/internal/wire/health"
	"github.com/cano-nats/cano/pkg/embedded"
)

// readyz GETs url's /readyz: the status code and the body.
func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + health.ReadyPath)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitReadyz(t *testing.T, base string, want int, wantBody string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, body := readyz(t, base)
		if code == want && strings.Contains(body, wantBody) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz: want %d %q within 90s, last %d %q", base, want, wantBody, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHealthEndpoints runs a coordinator and a worker with -metrics-addr:
// /healthz answers while they wait for the server, /readyz says why they
// are not ready, turns 200 once they run, 503 while the server is down,
// and 200 again once it is back.
func TestHealthEndpoints(t *testing.T) {
	t.Parallel()
	port := freePorts(t, 1)[0]
	url := urlOf(port)
	logs := &natstest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	servers := make(chan *health.Server, 2)
	done := make(chan error, 2)
	go func() {
		done <- app.RunCoordinator(ctx, log.With("proc", "coordinator"), app.CoordinatorConfig{
			NATS: cli.NATSConfig{URL: url}, MetricsAddr: "127.0.0.1:0", DrainTimeout: time.Second,
			Health: func(s *health.Server) { servers <- s },
		}, 20*time.Second)
	}()
	go func() {
		done <- app.RunWorker(ctx, log.With("proc", "worker"), app.WorkerConfig{
			NATS: cli.NATSConfig{URL: url}, MetricsAddr: "127.0.0.1:0",
			Health: func(s *health.Server) { servers <- s },
		}, 20*time.Second)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for range 2 {
			select {
			case err := <-done:
				if err != nil {
					// Say where it hung: the processes' logs and every
					// goroutine of this test process.
					var stacks strings.Builder
					_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
					t.Fatalf("stop: %v\nlogs:\n%s\ngoroutines:\n%s", err, logs.String(), stacks.String())
				}
			case <-time.After(60 * time.Second):
				t.Fatal("a process did not stop within 60s")
			}
		}
	}
	t.Cleanup(stop)
	var bases []string
	for range 2 {
		select {
		case s := <-servers:
			bases = append(bases, "http://"+s.Addr())
		case err := <-done:
			t.Fatalf("a process exited: %v\n%s", err, logs.String())
		case <-time.After(30 * time.Second):
			t.Fatal("no health server within 30s")
		}
	}
	for _, b := range bases {
		require.NoError(t, health.Probe(context.Background(), b+health.LivePath))
		code, body := readyz(t, b)
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Contains(t, body, "not ready: starting")
	}

	dir := t.TempDir()
	srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: port})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop() })
	for _, b := range bases {
		waitReadyz(t, b, http.StatusOK, "ready")
	}

	srv.Stop()
	for _, b := range bases {
		waitReadyz(t, b, http.StatusServiceUnavailable, "not connected to NATS")
		require.NoError(t, health.Probe(context.Background(), b+health.LivePath))
	}
	srv, err = embedded.Start(embedded.Config{StoreDir: dir, Port: port})
	require.NoError(t, err)
	for _, b := range bases {
		waitReadyz(t, b, http.StatusOK, "ready")
	}
	runOne(t, url)
	// The same listeners serve the processes' Prometheus metrics.
	var scraped strings.Builder
	for _, b := range bases {
		resp, err := http.Get(b + app.MetricsPath)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		scraped.Write(body)
	}
	require.Contains(t, scraped.String(), `cano_coordinator_runs_finished_total{status="completed",workflow="one_task"} 1`)
	require.Contains(t, scraped.String(), `cano_worker_task_attempts_total{kind="noop",outcome="succeeded"} 1`)
	stop()
	for _, b := range bases {
		require.Error(t, health.Probe(context.Background(), b+health.LivePath), "listener still open after stop")
	}
}

func TestInfoFlags(t *testing.T) {
	t.Parallel()
	s := health.New(health.Config{Addr: "127.0.0.1:0"})
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	base := "http://" + s.Addr()
	tests := []struct {
		name     string
		flags    app.InfoFlags
		wantExit bool
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"none", app.InfoFlags{}, false, 0, "", ""},
		{"version", app.InfoFlags{Version: true}, true, 0, "cano ", ""},
		{"healthz passes", app.InfoFlags{HealthCheck: base + "/healthz"}, true, 0, "", ""},
		{"readyz fails", app.InfoFlags{HealthCheck: base + "/readyz"}, true, 1, "", "503 Service Unavailable: not ready: starting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			exit, code := tc.flags.Run(context.Background(), &out, &errOut)
			require.Equal(t, tc.wantExit, exit)
			require.Equal(t, tc.wantCode, code)
			require.True(t, strings.HasPrefix(out.String(), tc.wantOut), out.String())
			require.Contains(t, errOut.String(), tc.wantErr)
		})
	}
}
