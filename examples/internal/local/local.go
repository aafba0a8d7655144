// Package local starts, in one process, everything an example needs: a NATS
// server with JetStream (embedded, in a temporary directory, unless a URL is
// given), the streams and buckets, a coordinator, a worker hosting the
// example's workflows, a client and, on request, a scheduler. Close stops
// them all and removes the temporary directory.
//
// It keeps each example about its workflow: the wiring a deployment does in
// separate processes (cmd/coordinator, cmd/worker) happens here in a few
// lines.
package local

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// StartTimeout bounds Start when its context has no deadline.
const StartTimeout = 30 * time.Second

// Reconnect pacing of a connection made by [Connect]: after losing its
// server it tries again every ReconnectWait plus a random jitter of up to
// ReconnectJitter (ReconnectJitterTLS over TLS), for ever. These are the
// values cmd/coordinator and cmd/worker use (internal/wire/cli's
// ReconnectWaitDefault, ReconnectJitterDefault and
// ReconnectJitterTLSDefault; see there why not nats.go's 2 s), repeated
// because depguard keeps internal/ packages, this one included, from
// importing internal/wire; a test checks that the two stay equal.
const (
	ReconnectWait      = 250 * time.Millisecond
	ReconnectJitter    = 250 * time.Millisecond
	ReconnectJitterTLS = time.Second
)

// Connect connects to url under the connection name name, with the
// reconnect pacing of cmd/coordinator and cmd/worker (see [ReconnectWait]).
func Connect(url, name string) (*nats.Conn, error) {
	return nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1),
		nats.ReconnectWait(ReconnectWait), nats.ReconnectJitter(ReconnectJitter, ReconnectJitterTLS))
}

// Options say what to start. Registry is required unless NoWorker is set.
type Options struct {
	// URL of a NATS server with JetStream to use; "" starts an embedded
	// server on a free loopback port with its data in a temporary
	// directory that Close removes.
	URL string
	// Registry holds the task kinds the in-process worker runs.
	Registry *fsm.Registry
	// Workflows are registered by the worker on start.
	Workflows []worker.Definer
	// Resources are the worker's resources (set up on start, torn down on
	// Close). Nil means none.
	Resources *kvstore.Resources
	// Concurrency bounds the worker's tasks in flight; 0 means the worker's
	// default.
	Concurrency int
	// NoWorker starts no worker (an example that runs its own).
	NoWorker bool
	// Scheduler starts a scheduler (cron, interval and manual flows) and
	// fills Env.Flows.
	Scheduler bool
	// Logger receives the engine's logs; nil discards them, so an example
	// prints only its own lines.
	Logger *slog.Logger
}

// Env is what Start started.
type Env struct {
	// URL is the NATS server's client URL.
	URL string
	// NC and JS are the example's connection.
	NC *nats.Conn
	JS jetstream.JetStream
	// Client triggers, awaits and reads runs.
	Client *client.Client
	// Worker is the in-process worker (nil with NoWorker).
	Worker *worker.Worker
	// Flows adds, triggers and reads scheduler flows (nil without
	// Options.Scheduler).
	Flows *scheduler.Client
	// Scheduler is the in-process scheduler (nil without Options.Scheduler).
	Scheduler *scheduler.Scheduler

	undo []func()
}

// Start starts what opts ask for. On error it has already undone whatever
// it started.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if opts.Registry == nil && !opts.NoWorker {
		return nil, errors.New("local: Options.Registry is required: register the example's task kinds with fsm.Register")
	}
	ctx, cancel := deadline.Default(ctx, StartTimeout)
	defer cancel()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	env := &Env{URL: opts.URL}
	fail := func(what string, err error) (*Env, error) {
		env.Close()
		return nil, fmt.Errorf("local: %s: %w", what, err)
	}
	if env.URL == "" {
		dir, err := os.MkdirTemp("", "cano-example-")
		if err != nil {
			return fail("temporary directory", err)
		}
		env.defer_(func() { _ = os.RemoveAll(dir) })
		srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
		if err != nil {
			return fail("embedded NATS server", err)
		}
		env.defer_(srv.Stop)
		env.URL = srv.ClientURL()
	}
	nc, err := Connect(env.URL, "cano-example")
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
	if err != nil {
		return fail("coordinator", err)
	}
	if err := co.Start(ctx); err != nil {
		return fail("start coordinator", err)
	}
	env.defer_(func() { stop(co.Stop) })
	if !opts.NoWorker {
		w, err := worker.New(nc, worker.Config{Registry: opts.Registry, Workflows: opts.Workflows,
			Resources: opts.Resources, Concurrency: opts.Concurrency, Logger: log})
		if err != nil {
			return fail("worker", err)
		}
		if err := w.Start(ctx); err != nil {
			return fail("start worker", err)
		}
		env.defer_(func() { stop(w.Stop) })
		env.Worker = w
	}
	if opts.Scheduler {
		s, err := scheduler.New(env.JS, scheduler.Config{Logger: log})
		if err != nil {
			return fail("scheduler", err)
		}
		if err := s.Start(ctx); err != nil {
			return fail("start scheduler", err)
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

// Close stops everything Start started, last started first, and removes the
// embedded server's data. It is safe to call more than once.
func (e *Env) Close() {
	for i := len(e.undo) - 1; i >= 0; i-- {
		e.undo[i]()
	}
	e.undo = nil
}

func (e *Env) defer_(f func()) { e.undo = append(e.undo, f) }

// stop calls a component's Stop with a bounded grace period.
func stop(f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = f(ctx)
}

// Main is an example's main: it parses -s (the NATS server URL; empty
// starts an embedded one) and -timeout, sets the default logger to warnings
// on stderr, runs run with stdout until it
// returns or Ctrl-C, and exits 1 with the error on stderr if it failed.
func Main(run func(ctx context.Context, out io.Writer, url string) error) {
	url := flag.String("s", os.Getenv("NATS_URL"), "NATS server URL (default $NATS_URL; empty: an embedded server in a temporary directory)")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()
	// The engine logs warnings and errors only, so the example's own lines
	// stay readable.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, *timeout)
	defer cancelT()
	if err := run(ctx, os.Stdout, *url); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		cancelT()
		cancel()
		os.Exit(1)
	}
}
