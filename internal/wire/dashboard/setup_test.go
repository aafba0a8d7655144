package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/app"
	"github.com/cano-nats/cano/internal/wire/faults"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// EchoFail is a test task that fails (without retrying) with an error
// holding its run's input, so pages must escape both.
type EchoFail struct{}

// Kind implements fsm.Task.
func (EchoFail) Kind() string { return "echo_fail" }

// Run implements fsm.Task.
func (EchoFail) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var in string
	if err := tc.Input(&in); err != nil {
		return fsm.Result{}, fsm.Permanent(err)
	}
	return fsm.Result{}, fsm.Permanent(errors.New("refused " + in))
}

const echoFailName = "echo_fail"

// devSetup is a dev-mode coordinator (embedded server, coordinator,
// scheduler, demo worker, dashboard) started as cmd/coordinator -dev
// starts it, plus a worker hosting the echo_fail workflow.
type devSetup struct {
	base string // the dashboard's URL, http://127.0.0.1:port
	nc   *nats.Conn
	cl   *client.Client
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startDev(t *testing.T) *devSetup {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	natsURL := make(chan string, 1)
	httpAddr := make(chan string, 1)
	done := make(chan error, 1)
	cfg := app.CoordinatorConfig{Dev: true, DataDir: t.TempDir(), Listen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		HTTP: "127.0.0.1:0", DrainTimeout: time.Second, Extra: faults.Install,
		Ready:     func(u string) { natsURL <- u },
		HTTPReady: func(a string) { httpAddr <- a }}
	go func() {
		done <- app.RunCoordinator(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, 10*time.Second)
	}()
	var s devSetup
	select {
	case a := <-httpAddr:
		s.base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("dev coordinator ended: %v", err)
	case <-time.After(120 * time.Second):
		cancel()
		t.Fatal("dev coordinator not ready within 120s")
	}
	u := <-natsURL
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Error("dev coordinator did not stop within 60s")
		}
	})
	nc, err := nats.Connect(u)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	s.nc = nc
	s.cl, err = client.New(nc, client.Config{})
	require.NoError(t, err)
	reg := &fsm.Registry{}
	fsm.Register[EchoFail](reg)
	wf := fsm.New[string](echoFailName, "echo").Register("echo", EchoFail{}, fsm.TaskConfig{Retry: fsm.RetryNone()}).Exit("done")
	w, err := worker.New(nc, worker.Config{ID: "echo-worker", Registry: reg, Workflows: []worker.Definer{wf}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = w.Stop(sctx)
	})
	return &s
}

// get fetches path from the dashboard and returns the status and body.
func (s *devSetup) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// postJSON posts form to path as a script does (Accept: application/json)
// and returns the status and the JSON answer.
func (s *devSetup) postJSON(t *testing.T, path string, form url.Values) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return resp.StatusCode, v
}
