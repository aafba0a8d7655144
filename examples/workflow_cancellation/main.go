// Workflow_cancellation cancels a run from the client while its ship step
// is running: the task's context is cancelled, dispatching stops, and the
// run ends cancelled with an error matching fsm.ErrCancelled.
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
	Pack State = "pack"
	Ship State = "ship"
	Done State = "done"
)

// The worker runs in this process: shipping says the ship task started,
// stopped why its context ended.
var (
	shipping = make(chan struct{}, 1)
	stopped  = make(chan error, 1)
)

// PackTask packs the order.
type PackTask struct{}

// Kind implements fsm.Task.
func (PackTask) Kind() string { return "pack" }

// Run implements fsm.Task.
func (PackTask) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Ship), nil
}

// ShipTask ships it, which takes a long time.
type ShipTask struct{}

// Kind implements fsm.Task.
func (ShipTask) Kind() string { return "ship" }

// Run implements fsm.Task.
func (ShipTask) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	shipping <- struct{}{}
	select {
	case <-time.After(time.Minute):
		return fsm.Next(Done), nil
	case <-ctx.Done():
		stopped <- ctx.Err()
		return fsm.Result{}, ctx.Err()
	}
}

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("cancellation", Pack).
		Register(Pack, PackTask{}).
		Register(Ship, ShipTask{}, fsm.TaskConfig{Retry: fsm.RetryNone()}).
		Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[PackTask](reg)
	fsm.Register[ShipTask](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	id, err := env.Client.Trigger(ctx, "cancellation", nil)
	if err != nil {
		return err
	}
	select {
	case <-shipping:
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintln(out, "shipping started; cancelling the run")
	if err := env.Client.Cancel(ctx, id, "customer changed their mind"); err != nil {
		return err
	}
	r, err := env.Client.Await(ctx, id)
	if r == nil || !errors.Is(err, fsm.ErrCancelled) {
		return fmt.Errorf("want the run cancelled, got %v", err)
	}
	fmt.Fprintf(out, "run %s in %s after %s: %v\n", r.Status, r.State, strings.Join(r.Path, " → "), err)
	select {
	case err := <-stopped:
		fmt.Fprintf(out, "the ship task stopped: %v\n", err)
	case <-ctx.Done():
		return errors.New("the ship task was never told to stop")
	}
	return nil
}
