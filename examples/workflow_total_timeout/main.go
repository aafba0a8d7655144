// Workflow_total_timeout bounds a whole run: TotalTimeout(500ms) on a
// workflow whose ship step would take 10 s. The total timeout is a durable
// timer (it survives every restart); when it fires the run fails with
// ErrWorkflowTimeout and the running task's context is cancelled.
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
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Reserve State = "reserve"
	Ship    State = "ship"
	Done    State = "done"
)

// Step sleeps for Delay (or until its context ends) and goes to Next.
type Step struct {
	Next  State         `msgpack:"next"`
	Delay time.Duration `msgpack:"delay"`
}

// Kind implements fsm.Task.
func (Step) Kind() string { return "timed_step" }

// stopped receives why a step's context ended (the worker runs in this
// process).
var stopped = make(chan error, 1)

// Run implements fsm.Task.
func (s Step) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(s.Delay):
		return fsm.Next(s.Next), nil
	case <-ctx.Done():
		select {
		case stopped <- context.Cause(ctx):
		default:
		}
		return fsm.Result{}, ctx.Err()
	}
}

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("total_timeout", Reserve).
		Register(Reserve, Step{Next: Ship, Delay: 50 * time.Millisecond}).
		Register(Ship, Step{Next: Done, Delay: 10 * time.Second}).
		Exit(Done).
		TotalTimeout(500 * time.Millisecond)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[Step](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	r, err := env.Client.Run(ctx, "total_timeout", nil)
	if r == nil || !errors.Is(err, fsm.ErrWorkflowTimeout) {
		return fmt.Errorf("want the run to fail with a workflow timeout, got %v", err)
	}
	fmt.Fprintf(out, "%s in %s after %s: workflow timeout: %v\n", r.Status, r.State, strings.Join(r.Path, " → "), errors.Is(err, fsm.ErrWorkflowTimeout))
	select {
	case cause := <-stopped:
		fmt.Fprintln(out, "the ship task's context was cancelled")
		_ = cause // the engine's cause, which the example does not print
	case <-ctx.Done():
		return errors.New("the ship task was never told to stop")
	}
	return nil
}
