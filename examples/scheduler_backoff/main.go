// Scheduler_backoff runs a flow whose workflow fails: after each failed run
// the scheduler waits longer before the next one (the flow's
// BackoffPolicy), and after StreakLimit failures in a row the flow trips
// and stops running; a manual trigger is refused until the flow is reset.
// Once the cause is fixed, Reset untrips it and the next run succeeds,
// clearing the streak.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

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
	Sync State = "sync"
	Done State = "done"
)

// upstreamDown makes Synchronize fail while set.
var upstreamDown atomic.Bool

// Synchronize fails while the (simulated) upstream is down.
type Synchronize struct{}

// Kind implements fsm.Task.
func (Synchronize) Kind() string { return "synchronize" }

// Run implements fsm.Task.
func (Synchronize) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	if upstreamDown.Load() {
		return fsm.Result{}, fsm.Permanent(errors.New("upstream unavailable"))
	}
	return fsm.Next(Done), nil
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	upstreamDown.Store(true)
	reg := &fsm.Registry{}
	fsm.Register[Synchronize](reg)
	wf := fsm.New[State]("sync", Sync).Register(Sync, Synchronize{}, fsm.Minimal()).Exit(Done)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Scheduler: true, Workflows: []worker.Definer{wf}})
	if err != nil {
		return err
	}
	defer env.Close()
	events, err := env.Client.Events(ctx, &client.EventFilter{Workflow: "sync",
		Types: []client.EventType{client.EventCompleted, client.EventFailed}})
	if err != nil {
		return err
	}
	defer events.Stop()

	backoff := scheduler.BackoffPolicy{Initial: 100 * time.Millisecond, Multiplier: 2, Jitter: -1, StreakLimit: 3}
	fmt.Fprintf(out, "backoff after failure 1, 2: %s, %s; trips after %d\n",
		backoff.Delay(1, 0), backoff.Delay(2, 0), backoff.StreakLimit)
	remove, err := local.AddFlows(ctx, env, scheduler.Flow{ID: "sync", Workflow: "sync",
		Schedule: scheduler.Every(50 * time.Millisecond), Backoff: backoff})
	if err != nil {
		return err
	}
	defer remove()
	for i := 1; i <= 3; i++ {
		ev, err := events.Next(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "run %d: %s: %v\n", i, ev.Type, ev.Err)
	}
	info, err := waitStatus(ctx, env.Flows, scheduler.StatusTripped)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "flow %s: streak %d, last error %q\n", info.Status, info.FailureStreak, info.LastError)
	err = env.Flows.Trigger(ctx, "sync")
	if !errors.Is(err, scheduler.ErrFlowTripped) {
		return fmt.Errorf("want a tripped flow's trigger refused, got %v", err)
	}
	fmt.Fprintf(out, "trigger refused: %v\n", err)

	upstreamDown.Store(false)
	if err := env.Flows.Reset(ctx, "sync"); err != nil {
		return err
	}
	ev, err := events.Next(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "after reset: run %s\n", ev.Type)
	if info, err = waitStreak0(ctx, env.Flows); err != nil {
		return err
	}
	fmt.Fprintf(out, "flow streak %d, last error %q\n", info.FailureStreak, info.LastError)
	return nil
}

// waitStatus polls the flow's status (bounded by ctx) until it is want.
func waitStatus(ctx context.Context, flows *scheduler.Client, want scheduler.Status) (scheduler.FlowInfo, error) {
	return poll(ctx, flows, func(i scheduler.FlowInfo) bool { return i.Status == want })
}

// waitStreak0 polls the flow's status until the run after the reset is
// recorded as completed, which clears the streak and the last error (the
// reset already zeroed the streak: a status read between the run's start
// and its end would show the old error).
func waitStreak0(ctx context.Context, flows *scheduler.Client) (scheduler.FlowInfo, error) {
	return poll(ctx, flows, func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusCompleted && i.FailureStreak == 0 && i.RunCount > 3
	})
}

func poll(ctx context.Context, flows *scheduler.Client, ok func(scheduler.FlowInfo) bool) (scheduler.FlowInfo, error) {
	for {
		info, err := flows.Status(ctx, "sync")
		if err != nil {
			return info, err
		}
		if ok(info) {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("flow sync stuck in %s (streak %d): %w", info.Status, info.FailureStreak, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
