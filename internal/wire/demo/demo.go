// Package demo holds the demo workflows that dev mode and cmd/worker run:
// cano's README example (three parallel fetches joined with All, each
// writing source_N to the run's store, read by the next state).
package demo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/kvstore"
)

// FlowState is the demo's state type.
type FlowState string

// Demo states.
const (
	Start     FlowState = "start"
	Aggregate FlowState = "aggregate"
	Complete  FlowState = "complete"
)

// WorkflowName is the demo workflow's name.
const WorkflowName = "parallel_fetch"

// FetchSource simulates fetching data from a source and stores it under
// source_<id> in the run's store; its output is the data too.
type FetchSource struct {
	SourceID int           `msgpack:"source_id"`
	Delay    time.Duration `msgpack:"delay"`
}

// Kind implements fsm.Task.
func (FetchSource) Kind() string { return "fetch_source" }

// Run implements fsm.Task.
func (f FetchSource) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(f.Delay):
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
	data := fmt.Sprintf("data_from_%d", f.SourceID)
	if tc.Store != nil {
		if err := kvstore.PutValue(ctx, tc.Store, fmt.Sprintf("source_%d", f.SourceID), data); err != nil {
			return fsm.Result{}, err
		}
	}
	return fsm.NextWith(Complete, data), nil
}

// AggregateSources reads every source_N from the run's store and the branch
// outputs, and completes with the joined data.
type AggregateSources struct{}

// Kind implements fsm.Task.
func (AggregateSources) Kind() string { return "aggregate_sources" }

// Run implements fsm.Task.
func (AggregateSources) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var parts []string
	if tc.Store != nil {
		keys, err := tc.Store.Keys(ctx, "source_")
		if err != nil {
			return fsm.Result{}, err
		}
		for _, k := range keys {
			v, err := kvstore.GetAs[string](ctx, tc.Store, k)
			if err != nil {
				return fsm.Result{}, err
			}
			parts = append(parts, v)
		}
	}
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	if len(parts) == 0 {
		for _, b := range branches {
			v, err := fsm.BranchOutput[string](b)
			if err != nil {
				return fsm.Result{}, err
			}
			parts = append(parts, v)
		}
	}
	sort.Strings(parts)
	return fsm.NextWith(Complete, strings.Join(parts, ",")), nil
}

// Workflow returns the demo workflow: the definition of
// examples/parallel_fetch (a test there keeps the two the same), so the
// example run against a dev server registers no second version of it.
func Workflow() *fsm.Workflow[FlowState] {
	sources := []fsm.Task{
		FetchSource{SourceID: 1, Delay: 100 * time.Millisecond},
		FetchSource{SourceID: 2, Delay: 50 * time.Millisecond},
		FetchSource{SourceID: 3, Delay: 150 * time.Millisecond},
	}
	return fsm.New[FlowState](WorkflowName, Start).
		RegisterSplit(Start, sources, fsm.JoinConfig[FlowState]{Strategy: join.All(), JoinState: Aggregate, Timeout: 5 * time.Second}).
		Register(Aggregate, AggregateSources{}).
		Exit(Complete)
}

// Register adds the demo's task kinds to reg.
func Register(reg *fsm.Registry) {
	fsm.Register[FetchSource](reg)
	fsm.Register[AggregateSources](reg)
}
