// Scheduler_graceful_shutdown stops the scheduler while a flow's run is in
// flight. Stop fires nothing new and waits (up to Config.DrainTimeout) for
// the running flow to finish and its status to be recorded, then releases
// leadership, so the next leader starts from a settled status.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Export State = "export"
	Done   State = "done"
)

// gate holds the run until the example opens it; run sets it before the
// worker starts.
var gate struct {
	entered chan struct{}
	open    chan struct{}
}

// ExportData stands for a long job: it waits at the gate.
type ExportData struct{}

// Kind implements fsm.Task.
func (ExportData) Kind() string { return "export_data" }

// Run implements fsm.Task.
func (ExportData) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	gate.entered <- struct{}{}
	select {
	case <-gate.open:
		return fsm.Next(Done), nil
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	gate.entered, gate.open = make(chan struct{}, 1), make(chan struct{})
	reg := &fsm.Registry{}
	fsm.Register[ExportData](reg)
	wf := fsm.New[State]("export", Export).Register(Export, ExportData{}).Exit(Done)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Scheduler: true, Workflows: []worker.Definer{wf}})
	if err != nil {
		return err
	}
	defer env.Close()
	opened := false
	defer func() {
		if !opened {
			close(gate.open)
		}
	}()
	events, err := env.Client.Events(ctx, &client.EventFilter{Workflow: "export", Types: []client.EventType{client.EventCompleted}})
	if err != nil {
		return err
	}
	defer events.Stop()

	remove, err := local.AddFlows(ctx, env, scheduler.Flow{ID: "export", Workflow: "export", Schedule: scheduler.Manual()})
	if err != nil {
		return err
	}
	defer remove()
	if err := env.Flows.Trigger(ctx, "export"); err != nil {
		return err
	}
	select {
	case <-gate.entered:
	case <-ctx.Done():
		return fmt.Errorf("the flow's run never started: %w", ctx.Err())
	}
	info, err := env.Flows.Status(ctx, "export")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "flow export is %s\n", info.Status)

	stopped := make(chan error, 1)
	go func() { stopped <- env.Scheduler.Stop(ctx) }()
	fmt.Fprintln(out, "scheduler stopping: it waits for the running flow")
	select {
	case err := <-stopped:
		return fmt.Errorf("the scheduler stopped while its flow was running (err %v)", err)
	default:
	}
	close(gate.open)
	opened = true
	ev, err := events.Next(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "the run %s\n", ev.Type)
	select {
	case err := <-stopped:
		if err != nil && !errors.Is(err, scheduler.ErrDrainTimeout) {
			return err
		}
		if err != nil {
			return fmt.Errorf("the scheduler did not drain: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("the scheduler never stopped: %w", ctx.Err())
	}
	if info, err = env.Flows.Status(ctx, "export"); err != nil {
		return err
	}
	fmt.Fprintf(out, "scheduler stopped; flow export is %s after %d run(s)\n", info.Status, info.RunCount)
	return nil
}
