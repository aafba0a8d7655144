// Workflow_resources gives tasks shared resources: things a worker sets up
// once before it takes tasks (a price table standing in for a database
// pool, an audit log) and tears down when it stops, in reverse order. Tasks
// look them up by key and type with kvstore.Get. A resource may report its
// health, and the worker's health is the worst of them. A resource whose
// setup fails stops its worker from starting.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Price State = "price"
	Done  State = "done"
)

// PriceTable is a resource: loaded on setup, reported degraded when marked
// stale.
type PriceTable struct {
	out    io.Writer
	prices map[string]int
	stale  atomic.Bool
}

// Setup loads the prices.
func (p *PriceTable) Setup(context.Context) error {
	p.prices = map[string]int{"apple": 3, "pear": 4}
	fmt.Fprintln(p.out, "setup: price table loaded")
	return nil
}

// Teardown releases the table.
func (p *PriceTable) Teardown(context.Context) error {
	fmt.Fprintln(p.out, "teardown: price table closed")
	return nil
}

// Health reports degraded while the table is stale.
func (p *PriceTable) Health(context.Context) kvstore.HealthStatus {
	if p.stale.Load() {
		return kvstore.HealthStatus{State: kvstore.StateDegraded, Reason: "prices not refreshed"}
	}
	return kvstore.Healthy()
}

// AuditLog is a resource without health: it is reported healthy.
type AuditLog struct {
	out   io.Writer
	mu    sync.Mutex
	lines []string
}

// Setup opens the log.
func (a *AuditLog) Setup(context.Context) error {
	fmt.Fprintln(a.out, "setup: audit log opened")
	return nil
}

// Teardown flushes the log.
func (a *AuditLog) Teardown(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(a.out, "teardown: audit log flushed %d line(s): %s\n", len(a.lines), strings.Join(a.lines, "; "))
	return nil
}

// Add appends a line.
func (a *AuditLog) Add(line string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lines = append(a.lines, line)
}

// BrokenDB fails its setup.
type BrokenDB struct{ kvstore.ResourceDefaults }

// Setup fails.
func (BrokenDB) Setup(context.Context) error { return errors.New("connection refused") }

// Quote prices the run input's item with the worker's resources.
type Quote struct{}

// Kind implements fsm.Task.
func (Quote) Kind() string { return "quote" }

// Run implements fsm.Task.
func (Quote) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	table, err := kvstore.Get[*PriceTable](tc.Resources, "prices")
	if err != nil {
		return fsm.Result{}, fsm.Permanent(err)
	}
	audit, err := kvstore.Get[*AuditLog](tc.Resources, "audit")
	if err != nil {
		return fsm.Result{}, fsm.Permanent(err)
	}
	var item string
	if err := tc.Input(&item); err != nil {
		return fsm.Result{}, err
	}
	price, ok := table.prices[item]
	if !ok {
		return fsm.Result{}, fsm.Permanent(fmt.Errorf("no price for %q", item))
	}
	audit.Add("quoted " + item)
	return fsm.NextWith(Done, price), nil
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[Quote](reg)
	table := &PriceTable{out: out}
	res := kvstore.NewResources(kvstore.ResourcesConfig{})
	res.Insert("prices", table)
	res.Insert("audit", &AuditLog{out: out})
	wf := fsm.New[State]("quote", Price).Register(Price, Quote{}, fsm.Minimal()).Exit(Done)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Resources: res,
		Workflows: []worker.Definer{wf}})
	if err != nil {
		return err
	}
	defer env.Close()

	for _, item := range []string{"apple", "pear", "plum"} {
		r, err := env.Client.Run(ctx, "quote", &client.TriggerOpts{Input: item})
		var price int
		switch {
		case err == nil && r.Output(&price) == nil:
			fmt.Fprintf(out, "%s costs %d\n", item, price)
		case r != nil && errors.Is(err, fsm.ErrPermanent):
			fmt.Fprintf(out, "%s: %s: %v\n", item, r.Status, err)
		default:
			return fmt.Errorf("quote %s: %w", item, err)
		}
	}

	fmt.Fprintf(out, "worker health: %s\n", env.Worker.Health(ctx))
	table.stale.Store(true)
	h := env.Worker.Health(ctx)
	fmt.Fprintf(out, "worker health: %s (%s)\n", h.State, h.Reason)

	bad := kvstore.NewResources(kvstore.ResourcesConfig{})
	bad.Insert("orders_db", BrokenDB{})
	w, err := worker.New(env.NC, worker.Config{Registry: reg, Resources: bad})
	if err != nil {
		return err
	}
	err = w.Start(ctx)
	if err == nil {
		_ = w.Stop(ctx)
		return errors.New("want a worker whose resource fails to set up not to start")
	}
	fmt.Fprintf(out, "a worker with a broken resource does not start: %v\n", err)

	env.Close() // the worker stops: its resources are torn down, last first
	return nil
}
