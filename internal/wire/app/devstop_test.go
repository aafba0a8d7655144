package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/app"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// holdName is the workflow of TestDevModeStopWithTasksInFlight: one task
// that holds until the dev coordinator is shutting down.
const holdName = "hold_until_stop"

// holdTasks is a hold task kind wired to a test: each task says it runs on
// started, then waits for release (or its context).
type holdTasks struct {
	started chan struct{}
	release chan struct{}
}

// install adds the hold kind and workflow to the dev worker
// (app.CoordinatorConfig.Extra).
func (h *holdTasks) install(reg *fsm.Registry) []worker.Definer {
	task := fsm.TaskFunc{KindName: "hold", Func: func(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
		select {
		case h.started <- struct{}{}:
		default:
		}
		select {
		case <-h.release:
			return fsm.Next("done"), nil
		case <-ctx.Done():
			return fsm.Result{}, ctx.Err()
		}
	}}
	if err := reg.RegisterTask(task); err != nil {
		panic(err)
	}
	return []worker.Definer{fsm.New[string](holdName, "hold").Register("hold", task).Exit("done")}
}

// onMessage calls fire when a record with message msg is handled, then
// hands every record to the wrapped handler.
type onMessage struct {
	slog.Handler
	msg  string
	fire func()
}

func (h onMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.fire()
	}
	return h.Handler.Handle(ctx, r)
}

func (h onMessage) WithAttrs(as []slog.Attr) slog.Handler {
	return onMessage{Handler: h.Handler.WithAttrs(as), msg: h.msg, fire: h.fire}
}

func (h onMessage) WithGroup(name string) slog.Handler {
	return onMessage{Handler: h.Handler.WithGroup(name), msg: h.msg, fire: h.fire}
}

// devProc is one dev-mode coordinator (embedded server, coordinator, dev
// worker, demo runs every 50ms) on a given data directory and port.
type devProc struct {
	logs   *natstest.LogBuffer
	cancel context.CancelFunc
	done   chan error
	url    string
}

func startDevProc(t *testing.T, dir string, port int, extra func(*fsm.Registry) []worker.Definer, onShutdown func()) *devProc {
	t.Helper()
	p := &devProc{logs: &natstest.LogBuffer{}, done: make(chan error, 1)}
	h := onMessage{Handler: slog.NewTextHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelDebug}),
		msg: "shutting down", fire: onShutdown}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	ready := make(chan string, 1)
	go func() {
		p.done <- app.RunCoordinator(ctx, slog.New(h), app.CoordinatorConfig{Dev: true, DataDir: dir,
			Listen: fmt.Sprintf("127.0.0.1:%d", port), HTTP: "off", MetricsAddr: "off", DemoEvery: 50 * time.Millisecond,
			DrainTimeout: 30 * time.Second, Extra: extra, Ready: func(url string) { ready <- url }}, 10*time.Second)
	}()
	select {
	case p.url = <-ready:
	case err := <-p.done:
		cancel()
		t.Fatalf("dev coordinator exited before it was ready: %v\n%s", err, p.logs.String())
	case <-time.After(120 * time.Second):
		cancel()
		t.Fatalf("dev coordinator not ready within 120s\n%s", p.logs.String())
	}
	return p
}

// stop ends p and requires that its stop returns no error: no component
// waited out the stop deadline.
func (p *devProc) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		require.NoError(t, err, "dev coordinator's stop\n%s", p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dev coordinator did not stop within 60s\n%s", p.logs.String())
	}
}

// TestDevModeStopWithTasksInFlight stops dev mode while tasks run (and
// demo runs come every 50ms): the tasks finish during the stop, and the
// stop returns no error, so each result got its PubAck (or its command was
// handed back) within the deadline and every component stopped. Dev mode
// started again on the same data completes every run: nothing in flight
// at the stop was lost.
func TestDevModeStopWithTasksInFlight(t *testing.T) {
	const runs = 8
	port := freePorts(t, 1)[0]
	// Made before anything that stops dev mode is deferred or registered,
	// so it is removed after the stop: the server's store must outlive it.
	dir := t.TempDir()
	h := &holdTasks{started: make(chan struct{}, runs), release: make(chan struct{})}
	p := startDevProc(t, dir, port, h.install, sync.OnceFunc(func() { close(h.release) }))
	first, stopped := p, false
	defer func() {
		if !stopped { // the test failed before the stop
			first.cancel()
			if err := <-first.done; err != nil {
				t.Logf("dev mode after the failure: %v", err)
			}
		}
	}()

	nc, err := nats.Connect(p.url)
	require.NoError(t, err)
	defer nc.Close()
	cl, err := client.New(nc, client.Config{Timeout: 30 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		_, err := cl.Workflow(ctx, holdName, "")
		return err == nil
	}, 60*time.Second, 50*time.Millisecond, "the dev worker never registered %s", holdName)
	ids := make([]string, runs)
	for i := range ids {
		ids[i], err = cl.Trigger(ctx, holdName, nil)
		require.NoError(t, err)
	}
	for i := range runs {
		select {
		case <-h.started:
		case <-ctx.Done():
			t.Fatalf("%d of %d hold tasks started\n%s", i, runs, p.logs.String())
		}
	}
	nc.Close()

	// Every hold task is running; the stop releases them.
	stopped = true
	first.stop(t)

	p = startDevProc(t, dir, port, h.install, func() {})
	defer p.stop(t)
	nc2, err := nats.Connect(p.url)
	require.NoError(t, err)
	defer nc2.Close()
	cl2, err := client.New(nc2, client.Config{Timeout: 30 * time.Second})
	require.NoError(t, err)
	for _, id := range ids {
		r, err := cl2.Await(ctx, id)
		require.NoError(t, err, "run %s\n%s", id, p.logs.String())
		require.Equal(t, client.RunCompleted, r.Status, "run %s", id)
	}
}
