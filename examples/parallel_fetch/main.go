// Parallel_fetch is the seed example: three fetches run in parallel, each
// writing source_N to the run's store; the split joins with All, and the
// next state aggregates what the fetches stored.
//
//	stateDiagram-v2
//	    [*] --> start
//	    start --> fetch1: split
//	    start --> fetch2: split
//	    start --> fetch3: split
//	    fetch1 --> aggregate: join All
//	    fetch2 --> aggregate
//	    fetch3 --> aggregate
//	    aggregate --> complete
//	    complete --> [*]
package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/worker"
)

// README:begin

// FlowState is the workflow's state type.
type FlowState string

// The states.
const (
	Start     FlowState = "start"
	Aggregate FlowState = "aggregate"
	Complete  FlowState = "complete"
)

// FetchSource simulates fetching from one source and stores the data under
// source_<id> in the run's store.
type FetchSource struct {
	SourceID int           `msgpack:"source_id"`
	Delay    time.Duration `msgpack:"delay"`
}

// Kind implements fsm.Task.
func (FetchSource) Kind() string { return "fetch_source" }

// Run implements fsm.Task.
func (f FetchSource) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(f.Delay): // the simulated network call
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
	data := fmt.Sprintf("data_from_%d", f.SourceID)
	if err := kvstore.PutValue(ctx, tc.Store, fmt.Sprintf("source_%d", f.SourceID), data); err != nil {
		return fsm.Result{}, err
	}
	return fsm.Next(Aggregate), nil
}

// AggregateSources reads every source_N the fetches stored and completes
// with their data, sorted and joined.
type AggregateSources struct{}

// Kind implements fsm.Task.
func (AggregateSources) Kind() string { return "aggregate_sources" }

// Run implements fsm.Task.
func (AggregateSources) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	keys, err := tc.Store.Keys(ctx, "source_")
	if err != nil {
		return fsm.Result{}, err
	}
	var parts []string
	for _, k := range keys {
		v, err := kvstore.GetAs[string](ctx, tc.Store, k)
		if err != nil {
			return fsm.Result{}, err
		}
		parts = append(parts, v)
	}
	sort.Strings(parts)
	return fsm.NextWith(Complete, strings.Join(parts, ",")), nil
}

// workflow is start (split of three fetches, joined with All) → aggregate →
// complete.
func workflow() *fsm.Workflow[FlowState] {
	fetches := []fsm.Task{
		FetchSource{SourceID: 1, Delay: 100 * time.Millisecond},
		FetchSource{SourceID: 2, Delay: 50 * time.Millisecond},
		FetchSource{SourceID: 3, Delay: 150 * time.Millisecond},
	}
	return fsm.New[FlowState]("parallel_fetch", Start).
		RegisterSplit(Start, fetches, fsm.JoinConfig[FlowState]{
			Strategy: join.All(), JoinState: Aggregate, Timeout: 5 * time.Second}).
		Register(Aggregate, AggregateSources{}).
		Exit(Complete)
}

// README:end

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[FetchSource](reg)
	fsm.Register[AggregateSources](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	r, err := env.Client.Run(ctx, "parallel_fetch", nil)
	if err != nil {
		return err
	}
	var data string
	if err := r.Output(&data); err != nil {
		return err
	}
	fmt.Fprintf(out, "path: %s\n", strings.Join(r.Path, " → "))
	fmt.Fprintf(out, "aggregated: %s\n", data)
	return printSplits(ctx, out, env.Client, r.ID)
}

// printSplits prints each split's join decision from the run's history.
func printSplits(ctx context.Context, out io.Writer, cl *client.Client, runID string) error {
	rec, err := cl.Get(ctx, runID)
	if err != nil {
		return err
	}
	for _, s := range rec.History {
		if s.Split != nil {
			fmt.Fprintf(out, "split at %s: %s of %d branches succeeded, join %s: %s\n",
				s.State, fmt.Sprint(s.Split.Succeeded), s.Split.Total, s.Split.Strategy, s.Split.Decision)
		}
	}
	return nil
}
