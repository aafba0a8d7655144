// Workflow_split_join splits work into parallel branches and joins their
// outputs: a sum over three chunks joined with All (the join state reads
// every branch's output with tc.Branches), then the same split with a
// 250 ms join timeout and one slow chunk, which fails the run with a
// timeout error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Split    State = "split"
	Combine  State = "combine"
	Complete State = "complete"
)

// SumChunk sums the run input's numbers in [From, To).
type SumChunk struct {
	From  int           `msgpack:"from"`
	To    int           `msgpack:"to"`
	Delay time.Duration `msgpack:"delay"`
}

// Kind implements fsm.Task.
func (SumChunk) Kind() string { return "sum_chunk" }

// Run implements fsm.Task.
func (c SumChunk) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var nums []int
	if err := tc.Input(&nums); err != nil {
		return fsm.Result{}, err
	}
	select {
	case <-time.After(c.Delay):
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
	sum := 0
	for _, n := range nums[min(c.From, len(nums)):min(c.To, len(nums))] {
		sum += n
	}
	return fsm.NextWith(Combine, sum), nil
}

// CombineSums adds the branches' sums.
type CombineSums struct{}

// Kind implements fsm.Task.
func (CombineSums) Kind() string { return "combine_sums" }

// Run implements fsm.Task.
func (CombineSums) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	total := 0
	for _, b := range branches {
		n, err := fsm.BranchOutput[int](b)
		if err != nil {
			return fsm.Result{}, err
		}
		total += n
	}
	return fsm.NextWith(Complete, total), nil
}

// workflow splits the input into three chunks; slow makes the last chunk
// take a second against a 250 ms join timeout.
func workflow(name string, slow bool) *fsm.Workflow[State] {
	last := SumChunk{From: 6, To: 10}
	cfg := fsm.JoinConfig[State]{Strategy: join.All(), JoinState: Combine, Timeout: 5 * time.Second}
	if slow {
		last.Delay = time.Second
		cfg.Timeout = 250 * time.Millisecond
	}
	return fsm.New[State](name, Split).
		RegisterSplit(Split, []fsm.Task{SumChunk{From: 0, To: 3}, SumChunk{From: 3, To: 6}, last}, cfg).
		Register(Combine, CombineSums{}).
		Exit(Complete)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[SumChunk](reg)
	fsm.Register[CombineSums](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg,
		Workflows: []worker.Definer{workflow("split_join", false), workflow("split_join_timeout", true)}})
	if err != nil {
		return err
	}
	defer env.Close()
	input := &client.TriggerOpts{Input: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}

	r, err := env.Client.Run(ctx, "split_join", input)
	if err != nil {
		return err
	}
	var total int
	if err := r.Output(&total); err != nil {
		return err
	}
	fmt.Fprintf(out, "all: %s via %s, sum of 1..10 = %d\n", r.Status, strings.Join(r.Path, " → "), total)

	r, err = env.Client.Run(ctx, "split_join_timeout", input)
	var se *fsm.StateError
	if r == nil || !errors.Is(err, fsm.ErrWorkflow) || !errors.As(err, &se) {
		return fmt.Errorf("want the join timeout to fail the run with a workflow error, got %v", err)
	}
	fmt.Fprintf(out, "all with a 250 ms join timeout: %s in state %s: %v\n", r.Status, se.State, se.Cause)
	return nil
}
