// Workflow_partial_results joins with PartialResults(2): the run goes on
// as soon as two branches succeeded. A failed branch does not count, and
// the branch still running is cancelled. The join state sees every
// branch's outcome.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
	Query   State = "query"
	Collect State = "collect"
	Done    State = "done"
)

// QueryReplica asks one (simulated) replica: after Delay it answers, or
// fails if Fail is set.
type QueryReplica struct {
	Name  string        `msgpack:"name"`
	Delay time.Duration `msgpack:"delay"`
	Fail  bool          `msgpack:"fail"`
}

// Kind implements fsm.Task.
func (QueryReplica) Kind() string { return "query_replica" }

// Run implements fsm.Task.
func (q QueryReplica) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(q.Delay):
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
	if q.Fail {
		return fsm.Result{}, fsm.Permanent(errors.New(q.Name + " is down"))
	}
	return fsm.NextWith(Collect, q.Name+" answered"), nil
}

// CollectAnswers lists each branch's outcome.
type CollectAnswers struct{}

// Kind implements fsm.Task.
func (CollectAnswers) Kind() string { return "collect_answers" }

// Run implements fsm.Task.
func (CollectAnswers) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	var lines []string
	for _, b := range branches {
		line := fmt.Sprintf("branch %d: %s", b.Index, b.Status)
		if answer, err := fsm.BranchOutput[string](b); err == nil {
			line += " (" + answer + ")"
		} else if b.Err != nil {
			line += " (" + b.Err.Error() + ")"
		}
		lines = append(lines, line)
	}
	return fsm.NextWith(Done, lines), nil
}

func workflow() *fsm.Workflow[State] {
	replicas := []fsm.Task{
		QueryReplica{Name: "eu", Fail: true},
		QueryReplica{Name: "us", Delay: 100 * time.Millisecond},
		QueryReplica{Name: "ap", Delay: 200 * time.Millisecond},
		QueryReplica{Name: "sa", Delay: 10 * time.Second},
	}
	return fsm.New[State]("partial_results", Query).
		RegisterSplit(Query, replicas, fsm.JoinConfig[State]{
			Strategy: join.PartialResults(2), JoinState: Collect, Timeout: 5 * time.Second}).
		Register(Collect, CollectAnswers{}).
		Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[QueryReplica](reg)
	fsm.Register[CollectAnswers](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	r, err := env.Client.Run(ctx, "partial_results", nil)
	if err != nil {
		return err
	}
	var lines []string
	if err := r.Output(&lines); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s via %s\n", r.Status, strings.Join(r.Path, " → "))
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	return nil
}
