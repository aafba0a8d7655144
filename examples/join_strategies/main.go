// Join_strategies runs the same four staggered branches (50, 150, 300 and
// 500 ms) under each join strategy, side by side: All waits for every
// branch, Any takes the first, Quorum(2) and PartialResults(2) the first
// two, Percentage(0.5) half of them. A join decides as soon as its outcome
// is known and cancels the branches it no longer needs.
package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type: one split state per strategy, all
// joining into Report.
type State string

// The states.
const (
	All        State = "all"
	Any        State = "any"
	Quorum     State = "quorum"
	Percentage State = "percentage"
	Partial    State = "partial_results"
	Report     State = "report"
	Done       State = "done"
)

// Work sleeps for its delay (or until cancelled) and succeeds.
type Work struct {
	Delay time.Duration `msgpack:"delay"`
}

// Kind implements fsm.Task.
func (Work) Kind() string { return "staggered_work" }

// Run implements fsm.Task.
func (w Work) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(w.Delay):
		return fsm.Next(Report), nil
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
}

// ReportTask ends the run; the split's summary is in the run's history.
type ReportTask struct{}

// Kind implements fsm.Task.
func (ReportTask) Kind() string { return "report" }

// Run implements fsm.Task.
func (ReportTask) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}

// strategies are the split states and their strategies, in print order.
var strategies = []struct {
	State    State
	Strategy join.Strategy
}{
	{All, join.All()},
	{Any, join.Any()},
	{Quorum, join.Quorum(2)},
	{Percentage, join.Percentage(0.5)},
	{Partial, join.PartialResults(2)},
}

// workflow has one split per strategy; a run starts at one of them
// (TriggerOpts.InitialState).
func workflow() *fsm.Workflow[State] {
	branches := []fsm.Task{
		Work{Delay: 50 * time.Millisecond}, Work{Delay: 150 * time.Millisecond},
		Work{Delay: 300 * time.Millisecond}, Work{Delay: 500 * time.Millisecond},
	}
	wf := fsm.New[State]("join_strategies", All)
	for _, s := range strategies {
		wf.RegisterSplit(s.State, branches, fsm.JoinConfig[State]{
			Strategy: s.Strategy, JoinState: Report, Timeout: 10 * time.Second})
	}
	return wf.Register(Report, ReportTask{}).Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[Work](reg)
	fsm.Register[ReportTask](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	// The five runs go side by side.
	lines := make([]string, len(strategies))
	errs := make([]error, len(strategies))
	var wg sync.WaitGroup
	for i, s := range strategies {
		wg.Go(func() { lines[i], errs[i] = runOne(ctx, env.Client, s.State) })
	}
	wg.Wait()
	for i := range strategies {
		if errs[i] != nil {
			return errs[i]
		}
		fmt.Fprintln(out, lines[i])
	}
	return nil
}

// runOne runs the workflow from one strategy's split and describes its join.
func runOne(ctx context.Context, cl *client.Client, start State) (string, error) {
	r, err := cl.Run(ctx, "join_strategies", &client.TriggerOpts{InitialState: string(start)})
	if err != nil {
		return "", fmt.Errorf("%s: %w", start, err)
	}
	rec, err := cl.Get(ctx, r.ID)
	if err != nil {
		return "", err
	}
	for _, s := range rec.History {
		if sp := s.Split; sp != nil {
			took := s.Left.Sub(s.Entered).Round(10 * time.Millisecond)
			return fmt.Sprintf("%-16s %-9s required %d, succeeded %d, cancelled %d (join after %v)",
				sp.Strategy, sp.Decision, sp.Required, sp.Succeeded, sp.Cancelled, took), nil
		}
	}
	return "", fmt.Errorf("%s: no split in the run's history", start)
}
