package startstop_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/breakerkv"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/leader"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/startstop"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// component is one long-running part of the engine, as the lifecycle
// table sees it.
type component interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

type noop struct{}

func (noop) Kind() string { return "noop" }
func (noop) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Result{}, nil
}

// env is one embedded JetStream server with the engine's streams and
// buckets, and a connection to it.
type env struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names protocol.Names
}

func newEnv(t *testing.T) env {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	return env{nc: nc, js: js, names: protocol.MustNames("")}
}

// teardown records whether a worker resource was torn down.
type teardown struct {
	kvstore.ResourceDefaults
	done atomic.Bool
}

func (r *teardown) Teardown(context.Context) error { r.done.Store(true); return nil }

// lifecycles is the table: how to build each component, and how to make
// its Start fail after it has started something (nil: it starts nothing
// before its last step can fail). check, when set, says what a failed
// Start must have undone besides goroutines.
var lifecycles = []struct {
	name     string
	build    func(t *testing.T, e env) component
	breakIt  func(t *testing.T, e env)
	afterBad func(t *testing.T, c component)
}{
	{
		name: "coordinator",
		build: func(t *testing.T, e env) component {
			c, err := coordinator.New(e.nc, coordinator.Config{Shards: 2})
			must(t, err)
			return c
		},
		// The definitions watch and the shards run before the last input
		// stream's consumer is created.
		breakIt: func(t *testing.T, e env) {
			must(t, e.js.DeleteStream(context.Background(), layout.TimersStream(e.names)))
		},
	},
	{
		name: "worker",
		build: func(t *testing.T, e env) component {
			reg := &fsm.Registry{}
			fsm.Register[noop](reg)
			res := kvstore.NewResources(kvstore.ResourcesConfig{})
			res.Insert("db", &teardown{})
			w, err := worker.New(e.nc, worker.Config{Registry: reg, Resources: res, PresenceInterval: -1})
			must(t, err)
			lastResources = res
			return w
		},
		// Resources, breakers and the lease heartbeat are up before the
		// task consumers are created.
		breakIt: func(t *testing.T, e env) {
			must(t, e.js.DeleteStream(context.Background(), layout.TasksStream(e.names)))
		},
		afterBad: func(t *testing.T, _ component) {
			r, err := kvstore.Get[*teardown](lastResources, "db")
			must(t, err)
			if !r.done.Load() {
				t.Fatal("the failed Start left the resource it set up")
			}
		},
	},
	{
		name: "scheduler",
		build: func(t *testing.T, e env) component {
			s, err := scheduler.New(e.js, scheduler.Config{})
			must(t, err)
			return s
		},
		breakIt: func(t *testing.T, e env) {
			must(t, e.js.DeleteKeyValue(context.Background(), layout.LeaderBucket(e.names)))
		},
	},
	{
		name: "elector",
		build: func(t *testing.T, e env) component {
			el, err := leader.New(e.js, leader.Config{Bucket: layout.LeaderBucket(e.names),
				OnElected: func(ctx context.Context, _ leader.Term) { <-ctx.Done() }})
			must(t, err)
			return el
		},
		breakIt: func(t *testing.T, e env) {
			must(t, e.js.DeleteKeyValue(context.Background(), layout.LeaderBucket(e.names)))
		},
	},
	{
		name: "breaker store",
		build: func(t *testing.T, e env) component {
			kv, err := e.js.KeyValue(context.Background(), layout.BreakersBucket(e.names))
			must(t, err)
			st, err := breakerkv.NewKVStore(kv, breakerkv.KVStoreConfig{})
			must(t, err)
			return breakerStore{st}
		},
	},
}

// lastResources is the worker's resources of the current case (the table
// builds components in one goroutine at a time).
var lastResources *kvstore.Resources

// breakerStore gives the breaker store (started by its first use, not by
// a Start) the table's shape: Start uses a breaker, which starts its
// watcher; a second use is fine, so a second Start is not an error here.
type breakerStore struct{ *breakerkv.KVStore }

func (b breakerStore) Start(ctx context.Context) error {
	_, err := b.Load(ctx, "b")
	return err
}

func TestLifecycle(t *testing.T) {
	for _, tc := range lifecycles {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e := newEnv(t)
			isStore := tc.name == "breaker store"

			// Stop before Start is safe, and a Start after it is refused.
			c := tc.build(t, e)
			must(t, c.Stop(ctx))
			if !isStore {
				if err := c.Start(ctx); !errors.Is(err, startstop.ErrAlreadyStarted) {
					t.Fatalf("Start after Stop: %v, want ErrAlreadyStarted", err)
				}
			}
			noEngineGoroutines(t, "after Stop before Start")

			c = tc.build(t, e)
			must(t, c.Start(ctx))
			if running := engineGoroutines(); running == "" {
				t.Fatal("Start started no goroutine")
			}
			if !isStore {
				err := c.Start(ctx)
				if !errors.Is(err, startstop.ErrAlreadyStarted) || !errors.Is(err, coordinator.ErrAlreadyStarted) ||
					!errors.Is(err, worker.ErrAlreadyStarted) || !errors.Is(err, scheduler.ErrAlreadyStarted) {
					t.Fatalf("second Start: %v, want the one ErrAlreadyStarted", err)
				}
			}
			// Stop returns only once every goroutine it started is done.
			must(t, c.Stop(ctx))
			noEngineGoroutines(t, "after Stop")
			must(t, c.Stop(ctx)) // twice is safe
			if !isStore {
				if err := c.Start(ctx); !errors.Is(err, startstop.ErrAlreadyStarted) {
					t.Fatalf("Start after Stop: %v, want ErrAlreadyStarted", err)
				}
			}
		})
	}
}

// TestStartFailsHalfWay: a Start that fails after it started goroutines
// (and, for the worker, set up resources) leaves nothing running.
func TestStartFailsHalfWay(t *testing.T) {
	for _, tc := range lifecycles {
		if tc.breakIt == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e := newEnv(t)
			tc.breakIt(t, e)
			c := tc.build(t, e)
			if err := c.Start(ctx); err == nil {
				t.Fatal("Start succeeded on a broken setup")
			}
			noEngineGoroutines(t, "after a failed Start")
			if tc.afterBad != nil {
				tc.afterBad(t, c)
			}
			if err := c.Start(ctx); !errors.Is(err, startstop.ErrAlreadyStarted) {
				t.Fatalf("Start after a failed Start: %v, want ErrAlreadyStarted", err)
			}
			must(t, c.Stop(ctx))
		})
	}
}

// engineGoroutines returns the stacks of the goroutines running the
// engine's own code (not the embedded server's, nats.go's or the test's).
func engineGoroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		body := s
		if i := strings.Index(s, "\ncreated by "); i >= 0 {
			body = s[:i]
		}
		for _, pkg := range []string{"cano/pkg/coordinator.", "cano/pkg/worker.", "cano/pkg/scheduler.",
			"cano/pkg/breaker.", "cano/internal/breakerkv.", "cano/internal/leader.", "cano/internal/connwatch.", "cano/internal/startstop.(", "cano/internal/startstop.Wait"} {
			if strings.Contains(body, pkg) {
				out = append(out, s)
				break
			}
		}
	}
	return strings.Join(out, "\n\n")
}

// noEngineGoroutines fails unless no engine goroutine runs. A goroutine
// that has signalled its WaitGroup may not have exited yet when Stop
// returns, so it allows a short grace period: far shorter than any wait
// of the engine's (a watch, a fetch, a heartbeat), so a goroutine Stop did
// not wait for still shows.
func noEngineGoroutines(t *testing.T, when string) {
	t.Helper()
	deadline := time.Now().Add(100 * time.Millisecond)
	for {
		g := engineGoroutines()
		if g == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s, engine goroutines still run:\n%s", when, g)
		}
		runtime.Gosched()
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
