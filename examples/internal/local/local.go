// Package local starts, in one process, everything an example needs: a NATS
// server with JetStream (embedded, in a temporary directory, unless a URL is
// given), the streams and buckets, a coordinator, a worker hosting the
// example's workflows, a client and, on request, a scheduler — the
// deployment pkg/canotest gives a test. Close stops them all and removes the
// temporary directory.
//
// It keeps each example about its workflow: the wiring a deployment does in
// separate processes (cmd/coordinator, cmd/worker) happens here in a few
// lines.
package local

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/scheduler"
)

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

// Options say what to start (see canotest.Options). Registry is required
// unless NoWorker is set.
type Options = canotest.Options

// Env is what Start started (see canotest.Env).
type Env = canotest.Env

// Start starts what opts ask for: the deployment a test gets from
// canotest, which an example is too. On error it has already undone
// whatever it started; Env.Close stops it all and removes the embedded
// server's data.
func Start(ctx context.Context, opts Options) (*Env, error) {
	return canotest.New(ctx, opts)
}

// AddFlows adds flows to env's scheduler (Options.Scheduler), first
// removing a flow of the same id that an earlier run left on a shared
// server (-s), and returns what removes them again, for the example to
// defer: a cron or interval flow left behind would go on starting runs
// that no worker serves once the example has exited.
func AddFlows(ctx context.Context, env *Env, flows ...scheduler.Flow) (remove func(), err error) {
	remove = func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, f := range flows {
			_ = env.Flows.Remove(rctx, f.ID)
		}
	}
	for _, f := range flows {
		_ = env.Flows.Remove(ctx, f.ID) // left by an earlier run, or none
		if err := env.Flows.Add(ctx, f); err != nil {
			remove()
			return nil, err
		}
	}
	return remove, nil
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
