// Package canotest runs a whole Cano deployment inside a Go test: a NATS
// server with JetStream (embedded, in the test's temporary directory), the
// streams and buckets, a coordinator, a worker hosting the workflows under
// test, a client and, when asked, a scheduler. It is to Cano what
// net/http/httptest is to a handler: the real engine, the real broker, in
// one process, stopped when the test ends.
//
//	func TestOrder(t *testing.T) {
//		env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{orderWorkflow()}})
//		run, err := env.Client.Run(t.Context(), "order", &client.TriggerOpts{Input: Order{ID: "o-1"}})
//		...
//	}
//
// Each Start starts a server of its own on a free loopback port, so tests
// that call it may run in parallel. To share one deployment across a
// package's tests, call [New] from TestMain and [Env.Close] after m.Run.
package canotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// StartTimeout bounds starting an Env when the context has no deadline of
// its own (always, for Start).
const StartTimeout = 30 * time.Second

// StopTimeout is the grace period each component gets to stop.
const StopTimeout = 10 * time.Second

// Options say what to start. Registry is required unless NoWorker is set.
type Options struct {
	// URL of a NATS server with JetStream to use instead of an embedded
	// one. Every Env on one server shares its streams and buckets (and so
	// its runs, workflows and breakers): give each test its own workflow
	// names, or its own server. "" starts an embedded server on a free
	// loopback port, with its data in a temporary directory.
	URL string
	// Registry holds the task kinds the worker runs.
	Registry *fsm.Registry
	// Workflows are the workflows the worker registers on start.
	Workflows []worker.Definer
	// Resources are the worker's shared resources, set up on start and
	// torn down on stop. Nil means none.
	Resources *kvstore.Resources
	// Concurrency bounds the worker's tasks in flight; 0 means the
	// worker's default.
	Concurrency int
	// NoWorker starts no worker: the test starts its own (worker.New on
	// Env.NC), for example to stop and start it.
	NoWorker bool
	// Scheduler starts a scheduler (cron, interval and manual flows) and
	// fills Env.Flows and Env.Scheduler.
	Scheduler bool
	// Logger receives the engine's logs. Nil means: with Start, warnings
	// and errors go to the test's log (so a failing run says why next to
	// the failure); with New, they are discarded.
	Logger *slog.Logger
}

// Env is a running deployment.
type Env struct {
	// URL is the NATS server's client URL (for a second connection, a
	// worker of the test's own, or `nats -s`).
	URL string
	// NC and JS are a connection to it, used by everything in the Env.
	NC *nats.Conn
	JS jetstream.JetStream
	// Client triggers, awaits, reads and cancels runs.
	Client *client.Client
	// Coordinator is the deployment's coordinator.
	Coordinator *coordinator.Coordinator
	// Worker is the worker hosting Options.Workflows (nil with NoWorker).
	Worker *worker.Worker
	// Flows adds, triggers and reads scheduler flows; Scheduler runs them
	// (both nil without Options.Scheduler).
	Flows     *scheduler.Client
	Scheduler *scheduler.Scheduler

	mu   sync.Mutex
	undo []func() // guarded by mu
}

// Start starts what opts ask for and stops it when tb and its subtests
// end (tb.Cleanup). A failure to start fails tb at once (tb.Fatal), with
// what could not be started and why.
func Start(tb testing.TB, opts Options) *Env {
	tb.Helper()
	var logs *testLog
	if opts.Logger == nil {
		logs = &testLog{w: tb.Output()}
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: noTime}))
	}
	dir := ""
	if opts.URL == "" {
		dir = tb.TempDir() // removed by the testing package, after Close
	}
	env, err := start(context.Background(), opts, dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		env.Close()
		if logs != nil {
			logs.end() // no log line may reach tb after the test ended
		}
	})
	return env
}

// New starts what opts ask for, outside a test's lifetime (TestMain, a
// benchmark's set-up, a program): the caller calls Close. ctx bounds the
// start (StartTimeout when it has no deadline). On error, whatever was
// started is stopped again.
func New(ctx context.Context, opts Options) (*Env, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir := ""
	if opts.URL == "" {
		var err error
		if dir, err = os.MkdirTemp("", "canotest-"); err != nil {
			return nil, fmt.Errorf("canotest: temporary directory: %w", err)
		}
	}
	env, err := start(ctx, opts, dir)
	if dir != "" {
		if err != nil {
			_ = os.RemoveAll(dir)
		} else {
			env.defer_(func() { _ = os.RemoveAll(dir) })
		}
	}
	return env, err
}

// start starts opts' deployment; dir is the embedded server's store
// directory (opts.URL == "").
func start(ctx context.Context, opts Options, dir string) (*Env, error) {
	if opts.Registry == nil && !opts.NoWorker {
		return nil, errors.New("canotest: Options.Registry is required: register the workflows' task kinds with fsm.Register (or set NoWorker)")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, StartTimeout)
		defer cancel()
	}
	log := opts.Logger
	env := &Env{URL: opts.URL}
	fail := func(what string, err error) (*Env, error) {
		env.Close()
		return nil, fmt.Errorf("canotest: %s: %w", what, err)
	}
	if env.URL == "" {
		srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1, Logger: log})
		if err != nil {
			return fail("embedded NATS server", err)
		}
		env.defer_(srv.Stop)
		env.URL = srv.ClientURL()
	}
	// Reconnecting as cmd/coordinator and cmd/worker do.
	nc, err := nats.Connect(env.URL, nats.Name("canotest"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.ReconnectJitter(250*time.Millisecond, time.Second))
	if err != nil {
		return fail("connect to "+env.URL+" (is a NATS server with JetStream running there?)", err)
	}
	env.defer_(nc.Close)
	env.NC = nc
	if env.JS, err = jetstream.New(nc); err != nil {
		return fail("jetstream", err)
	}
	if err := provision.Ensure(ctx, env.JS, provision.Config{}); err != nil {
		return fail("streams and buckets", err)
	}
	co, err := coordinator.New(nc, coordinator.Config{Logger: log})
	if err == nil {
		err = co.Start(ctx)
	}
	if err != nil {
		return fail("start", err) // err names the coordinator
	}
	env.defer_(func() { stop(co.Stop) })
	env.Coordinator = co
	if !opts.NoWorker {
		w, err := worker.New(nc, worker.Config{Registry: opts.Registry, Workflows: opts.Workflows,
			Resources: opts.Resources, Concurrency: opts.Concurrency, Logger: log})
		if err == nil {
			err = w.Start(ctx)
		}
		if err != nil {
			return fail("start", err) // err names the worker
		}
		env.defer_(func() { stop(w.Stop) })
		env.Worker = w
	}
	if opts.Scheduler {
		s, err := scheduler.New(env.JS, scheduler.Config{Logger: log})
		if err == nil {
			err = s.Start(ctx)
		}
		if err != nil {
			return fail("start", err) // err names the scheduler
		}
		env.defer_(func() { stop(s.Stop) })
		env.Scheduler = s
		if env.Flows, err = scheduler.NewClient(env.JS, scheduler.ClientConfig{}); err != nil {
			return fail("scheduler client", err)
		}
	}
	if env.Client, err = client.New(nc, client.Config{}); err != nil {
		return fail("client", err)
	}
	return env, nil
}

// Close stops everything, last started first, each component within
// StopTimeout, and removes an embedded server's data (New; Start leaves
// that to the testing package). It is safe to call more than once.
func (e *Env) Close() {
	e.mu.Lock()
	undo := e.undo
	e.undo = nil
	e.mu.Unlock()
	for i := len(undo) - 1; i >= 0; i-- {
		undo[i]()
	}
}

func (e *Env) defer_(f func()) {
	e.mu.Lock()
	e.undo = append(e.undo, f)
	e.mu.Unlock()
}

// stop calls a component's Stop with a bounded grace period.
func stop(f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	_ = f(ctx)
}

// testLog writes log lines to a test's output until end is called: a line
// from a goroutine still winding down after the test ended would make the
// testing package panic.
type testLog struct {
	w     io.Writer
	mu    sync.Mutex
	ended bool // guarded by mu
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return len(p), nil
	}
	return l.w.Write(p)
}

func (l *testLog) end() {
	l.mu.Lock()
	l.ended = true
	l.mu.Unlock()
}

// noTime drops the time from log lines: the test's output is already in
// order, and -v times the test.
func noTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
