// Scheduler_scheduling runs workflows on schedules: an interval flow
// (every 300 ms), a cron flow (every second, cron with a seconds field) and
// a manual flow that runs only when triggered through the scheduler client.
// The elected scheduler fires them; the example waits for the runs'
// completed events, then reads each flow's status.
package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflows' state type.
type State string

// The states.
const (
	Work State = "work"
	Done State = "done"
)

// DoWork stands for a scheduled job's work.
type DoWork struct {
	Job string `msgpack:"job"`
}

// Kind implements fsm.Task.
func (DoWork) Kind() string { return "do_work" }

// Run implements fsm.Task.
func (d DoWork) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(Done, d.Job+" done"), nil
}

func workflow(name string) *fsm.Workflow[State] {
	return fsm.New[State](name, Work).Register(Work, DoWork{Job: name}).Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[DoWork](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Scheduler: true,
		Workflows: []worker.Definer{workflow("heartbeat"), workflow("report"), workflow("cleanup")}})
	if err != nil {
		return err
	}
	defer env.Close()
	events, err := env.Client.Events(ctx, &client.EventFilter{Types: []client.EventType{client.EventCompleted}})
	if err != nil {
		return err
	}
	defer events.Stop()

	flows := []scheduler.Flow{
		{ID: "heartbeat", Workflow: "heartbeat", Schedule: scheduler.Every(300 * time.Millisecond)},
		{ID: "report", Workflow: "report", Schedule: scheduler.Cron("* * * * * *")},
		{ID: "cleanup", Workflow: "cleanup", Schedule: scheduler.Manual()},
	}
	remove, err := local.AddFlows(ctx, env, flows...)
	if err != nil {
		return err
	}
	defer remove()
	if err := env.Flows.Trigger(ctx, "cleanup"); err != nil {
		return err
	}

	// Wait for two heartbeats, one report and the triggered cleanup.
	want := map[string]int{"heartbeat": 2, "report": 1, "cleanup": 1}
	got := map[string]int{}
	for missing := 4; missing > 0; {
		ev, err := events.Next(ctx)
		if err != nil {
			return fmt.Errorf("waiting for scheduled runs (have %v, want %v): %w", got, want, err)
		}
		if got[ev.Workflow] < want[ev.Workflow] {
			got[ev.Workflow]++
			missing--
		}
	}
	for _, f := range flows {
		info, err := env.Flows.Status(ctx, f.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s (%s): %d run(s) completed", f.ID, f.Schedule.Kind, got[f.ID])
		if f.Schedule.Kind == scheduler.KindManual {
			fmt.Fprintf(out, ", runs started: %d (only when triggered)", info.RunCount)
		}
		fmt.Fprintln(out)
	}
	return nil
}
