package worker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// scriptFunc is the behaviour of a scripted task, chosen per test.
type scriptFunc func(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error)

var (
	scripts   sync.Map // name → scriptFunc
	scriptSeq atomic.Int64
)

// newScript registers f under a fresh name.
func newScript(f scriptFunc) string {
	name := fmt.Sprintf("s%d", scriptSeq.Add(1))
	scripts.Store(name, f)
	return name
}

// scripted runs the script its Name parameter names (task parameters travel
// in the definition; behaviours stay in this process).
type scripted struct {
	Name string `msgpack:"name"`
}

func (scripted) Kind() string { return "scripted" }
func (s scripted) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	f, ok := scripts.Load(s.Name)
	if !ok {
		return fsm.Result{}, fsm.Permanent(fmt.Errorf("no script %q", s.Name))
	}
	return f.(scriptFunc)(ctx, tc)
}

// attemptLog records the worker hooks' view of every attempt, per run.
type attemptLog struct {
	mu      sync.Mutex
	started map[string][]time.Time // guarded by mu; run id → attempt start times
	ended   map[string][]error     // guarded by mu; run id → attempt errors
}

func newAttemptLog() *attemptLog {
	return &attemptLog{started: map[string][]time.Time{}, ended: map[string][]error{}}
}

func (l *attemptLog) hooks() worker.Hooks {
	return worker.Hooks{
		AttemptStarted: func(cmd *protocol.TaskCommand, attempt int) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.started[cmd.RunID] = append(l.started[cmd.RunID], time.Now())
		},
		AttemptEnded: func(cmd *protocol.TaskCommand, attempt int, err error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.ended[cmd.RunID] = append(l.ended[cmd.RunID], err)
		},
	}
}

func (l *attemptLog) starts(runID string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.started[runID]...)
}

func (l *attemptLog) ends(runID string) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.ended[runID]...)
}

// manualClock is a breaker.Clock the test moves.
type manualClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testBundle struct {
	srv    *natstest.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	client *client.Client
	log    *attemptLog
	worker *worker.Worker
}

// setup starts a JetStream server, a coordinator, and a worker hosting
// workflows (task kind "scripted"); cfg's Registry, Workflows and Hooks are
// filled in.
func setup(t testing.TB, cfg worker.Config, workflows ...worker.Definer) *testBundle {
	t.Helper()
	return setupFunc(t, func(*nats.Conn, jetstream.JetStream) worker.Config { return cfg }, workflows...)
}

// setupFunc is setup with a worker config built on the test's connection.
func setupFunc(t testing.TB, config func(*nats.Conn, jetstream.JetStream) worker.Config, workflows ...worker.Definer) *testBundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	cfg := config(nc, js)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := &fsm.Registry{}
	fsm.Register[scripted](reg)
	l := newAttemptLog()
	cfg.Registry, cfg.Workflows, cfg.Hooks = reg, workflows, l.hooks()
	if cfg.AckWait == 0 {
		cfg.AckWait = 5 * time.Second
	}
	w, err := worker.New(nc, cfg)
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 4})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	// Warm the client's lazily opened runs bucket before parallel subtests:
	// client.runsKV writes its cache without a lock (a data race under
	// concurrent first use; reported, not this package's code).
	_, _ = cl.Get(ctx, "warmup")
	return &testBundle{srv: srv, nc: nc, js: js, client: cl, log: l, worker: w}
}

// oneTask is a workflow "work" → "done" whose task runs script with cfg.
func oneTask(name, script string, cfg fsm.TaskConfig) *fsm.Workflow[string] {
	return fsm.New[string](name, "work").Register("work", scripted{Name: script}, cfg).Exit("done")
}

func awaitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
