// Workflow_simple is the smallest workflow with two steps: init puts a
// counter in the run's store, process reads it, adds the run's input and
// completes with the sum.
package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/worker"
)

// Step is the workflow's state type.
type Step string

// The states.
const (
	Init     Step = "init"
	Process  Step = "process"
	Complete Step = "complete"
)

// InitTask stores the counter's starting value in the run's store.
type InitTask struct {
	Start int `msgpack:"start"`
}

// Kind implements fsm.Task.
func (InitTask) Kind() string { return "init_counter" }

// Run implements fsm.Task.
func (t InitTask) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	if err := kvstore.PutValue(ctx, tc.Store, "counter", t.Start); err != nil {
		return fsm.Result{}, err
	}
	return fsm.Next(Process), nil
}

// ProcessTask adds the run's input to the stored counter.
type ProcessTask struct{}

// Kind implements fsm.Task.
func (ProcessTask) Kind() string { return "process_counter" }

// Run implements fsm.Task.
func (ProcessTask) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var add int
	if err := tc.Input(&add); err != nil {
		return fsm.Result{}, err
	}
	n, err := kvstore.GetAs[int](ctx, tc.Store, "counter")
	if err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Complete, n+add), nil
}

func workflow() *fsm.Workflow[Step] {
	return fsm.New[Step]("workflow_simple", Init).
		Register(Init, InitTask{Start: 40}).
		Register(Process, ProcessTask{}).
		Exit(Complete)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[InitTask](reg)
	fsm.Register[ProcessTask](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	r, err := env.Client.Run(ctx, "workflow_simple", &client.TriggerOpts{Input: 2})
	if err != nil {
		return err
	}
	var sum int
	if err := r.Output(&sum); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s, result %d\n", r.Status, strings.Join(r.Path, " → "), sum)
	return nil
}
