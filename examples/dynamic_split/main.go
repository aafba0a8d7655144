// Dynamic_split maps over data known only at run time: the plan state reads
// the run's input (a list of words) and returns fsm.SplitInto with one
// branch per word; the join state reduces the branches' outputs.
package main

import (
	"context"
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
	Plan   State = "plan"
	Reduce State = "reduce"
	Done   State = "done"
)

// PlanTask splits the run into one CountVowels branch per input word.
type PlanTask struct{}

// Kind implements fsm.Task.
func (PlanTask) Kind() string { return "plan_words" }

// Run implements fsm.Task.
func (PlanTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var words []string
	if err := tc.Input(&words); err != nil {
		return fsm.Result{}, err
	}
	if len(words) == 0 {
		return fsm.NextWith(Done, "nothing to count"), nil
	}
	tasks := make([]fsm.Task, len(words))
	for i, w := range words {
		tasks[i] = CountVowels{Word: w}
	}
	return fsm.SplitInto(fsm.JoinConfig[State]{
		Strategy: join.All(), JoinState: Reduce, Timeout: 10 * time.Second, Bulkhead: 4}, tasks...), nil
}

// CountVowels counts one word's vowels.
type CountVowels struct {
	Word string `msgpack:"word"`
}

// Kind implements fsm.Task.
func (CountVowels) Kind() string { return "count_vowels" }

// Run implements fsm.Task.
func (c CountVowels) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	n := 0
	for _, r := range strings.ToLower(c.Word) {
		if strings.ContainsRune("aeiou", r) {
			n++
		}
	}
	return fsm.NextWith(Reduce, n), nil
}

// ReduceTask adds the branches' counts.
type ReduceTask struct{}

// Kind implements fsm.Task.
func (ReduceTask) Kind() string { return "reduce_counts" }

// Run implements fsm.Task.
func (ReduceTask) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
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
	return fsm.NextWith(Done, fmt.Sprintf("%d vowels in %d words", total, len(branches))), nil
}

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("dynamic_split", Plan).
		Register(Plan, PlanTask{}).
		Register(Reduce, ReduceTask{}).
		Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[PlanTask](reg)
	fsm.Register[CountVowels](reg)
	fsm.Register[ReduceTask](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	inputs := [][]string{
		strings.Fields("the quick brown fox jumps over the lazy dog"),
		strings.Fields("a distributed workflow engine on jetstream"),
		nil,
	}
	for _, words := range inputs {
		r, err := env.Client.Run(ctx, "dynamic_split", &client.TriggerOpts{Input: words})
		if err != nil {
			return err
		}
		var summary string
		if err := r.Output(&summary); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d words: %s via %s: %s\n", len(words), r.Status, strings.Join(r.Path, " → "), summary)
	}
	return nil
}
