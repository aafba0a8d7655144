// Split_bulkhead splits into eight branches with JoinConfig.Bulkhead set to
// 2: at most two branches are in flight at once, across all workers, even
// though the worker could run eight tasks at a time. The others wait their
// turn (the join's timeout counts that queueing too). Use it to protect a
// downstream service that takes only so many calls at once.
package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Call    State = "call"
	Collect State = "collect"
	Done    State = "done"
)

// bulkhead is the most branches in flight at once.
const bulkhead = 2

// inFlight counts the branches running now; peak is its highest value.
var inFlight, peak atomic.Int32

// CallService calls a (simulated) service that takes 50 ms.
type CallService struct {
	N int `msgpack:"n"`
}

// Kind implements fsm.Task.
func (CallService) Kind() string { return "call_service" }

// Run implements fsm.Task.
func (c CallService) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	now := inFlight.Add(1)
	defer inFlight.Add(-1)
	for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
	}
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
	return fsm.NextWith(Collect, c.N*c.N), nil
}

// CollectSquares adds the branches' results.
type CollectSquares struct{}

// Kind implements fsm.Task.
func (CollectSquares) Kind() string { return "collect_squares" }

// Run implements fsm.Task.
func (CollectSquares) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	sum := 0
	for _, b := range branches {
		n, err := fsm.BranchOutput[int](b)
		if err != nil {
			return fsm.Result{}, err
		}
		sum += n
	}
	return fsm.NextWith(Done, sum), nil
}

func workflow() *fsm.Workflow[State] {
	var calls []fsm.Task
	for n := 1; n <= 8; n++ {
		calls = append(calls, CallService{N: n})
	}
	return fsm.New[State]("bulkhead", Call).
		RegisterSplit(Call, calls, fsm.JoinConfig[State]{Strategy: join.All(), JoinState: Collect,
			Timeout: 30 * time.Second, Bulkhead: bulkhead}).
		Register(Collect, CollectSquares{}).
		Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[CallService](reg)
	fsm.Register[CollectSquares](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Concurrency: 8,
		Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()
	r, err := env.Client.Run(ctx, "bulkhead", nil)
	if err != nil {
		return err
	}
	var sum int
	if err := r.Output(&sum); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s via %s: sum of squares 1..8 = %d\n", r.Status, strings.Join(r.Path, " → "), sum)
	fmt.Fprintf(out, "8 branches, worker concurrency 8, bulkhead %d: at most %d branches ran at once\n", bulkhead, peak.Load())
	if p := peak.Load(); p > bulkhead {
		return fmt.Errorf("the bulkhead let %d branches run at once, want at most %d", p, bulkhead)
	}
	return nil
}
