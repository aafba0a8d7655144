package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Names of the split workflow the fault suite kills workers under.
const (
	SleepySplitName = "sleepy_split"
	// SleepySplitBranches is the number of branches of SleepySplit.
	SleepySplitBranches = 4
)

// SplitBranch sleeps D (or until its context ends) and reports the attempt
// it ran in, so a join can tell redelivered branches.
type SplitBranch struct {
	D time.Duration `msgpack:"d"`
}

// Kind implements fsm.Task.
func (SplitBranch) Kind() string { return "split_branch" }

// Run implements fsm.Task.
func (s SplitBranch) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(s.D):
		return fsm.NextWith("tally", tc.Attempt), nil
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
}

// SplitTally is the output of a SleepySplit run: its branch outcomes as the
// join state saw them.
type SplitTally struct {
	Succeeded int `msgpack:"succeeded"`
	Other     int `msgpack:"other"`
	// Redelivered counts branches that succeeded in an attempt after the
	// first (their first delivery died with its worker).
	Redelivered int `msgpack:"redelivered"`
}

// Tally is a join state: it counts the branch outcomes of the split it
// follows, reading each branch's output.
type Tally struct{}

// Kind implements fsm.Task.
func (Tally) Kind() string { return "split_tally" }

// Run implements fsm.Task.
func (Tally) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	bs, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	var t SplitTally
	for _, b := range bs {
		if b.Status != protocol.BranchSucceeded {
			t.Other++
			continue
		}
		attempt, err := fsm.BranchOutput[int](b)
		if err != nil {
			return fsm.Result{}, fmt.Errorf("demo: tally: %w", err)
		}
		t.Succeeded++
		if attempt > 1 {
			t.Redelivered++
		}
	}
	return fsm.NextWith("done", t), nil
}

// SleepySplit fans out SleepySplitBranches branches that each sleep d,
// joins them with All into a tally, and completes with the tally.
func SleepySplit(d time.Duration) *fsm.Workflow[string] {
	tasks := make([]fsm.Task, SleepySplitBranches)
	for i := range tasks {
		tasks[i] = SplitBranch{D: d}
	}
	return fsm.New[string](SleepySplitName, "fan").
		RegisterSplit("fan", tasks, fsm.JoinConfig[string]{Strategy: join.All(), JoinState: "tally"}).
		Register("tally", Tally{}, fsm.Minimal()).
		Exit("done")
}

// RegisterSplits adds the split demo's task kinds to reg.
func RegisterSplits(reg *fsm.Registry) {
	fsm.Register[SplitBranch](reg)
	fsm.Register[Tally](reg)
}
