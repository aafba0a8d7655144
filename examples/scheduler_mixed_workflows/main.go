// Scheduler_mixed_workflows schedules workflows of different shapes side
// by side: a one-task health check on an interval and a split that sums
// three shards, triggered manually. The example reads each run's output
// from its completed event.
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
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflows' state type.
type State string

// The states.
const (
	Check State = "check"
	Shard State = "shard"
	Sum   State = "sum"
	Done  State = "done"
)

// HealthCheck reports the (simulated) service healthy.
type HealthCheck struct{}

// Kind implements fsm.Task.
func (HealthCheck) Kind() string { return "health_check" }

// Run implements fsm.Task.
func (HealthCheck) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(Done, "service healthy"), nil
}

// CountShard counts one shard's (simulated) rows.
type CountShard struct {
	Rows int `msgpack:"rows"`
}

// Kind implements fsm.Task.
func (CountShard) Kind() string { return "count_shard" }

// Run implements fsm.Task.
func (c CountShard) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(Sum, c.Rows), nil
}

// SumShards adds the shards' counts.
type SumShards struct{}

// Kind implements fsm.Task.
func (SumShards) Kind() string { return "sum_shards" }

// Run implements fsm.Task.
func (SumShards) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
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
	return fsm.NextWith(Done, fmt.Sprintf("%d rows in %d shards", total, len(branches))), nil
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[HealthCheck](reg)
	fsm.Register[CountShard](reg)
	fsm.Register[SumShards](reg)
	health := fsm.New[State]("health", Check).Register(Check, HealthCheck{}).Exit(Done)
	rowcount := fsm.New[State]("rowcount", Shard).
		RegisterSplit(Shard, []fsm.Task{CountShard{Rows: 120}, CountShard{Rows: 80}, CountShard{Rows: 42}},
			fsm.JoinConfig[State]{Strategy: join.All(), JoinState: Sum, Timeout: 10 * time.Second}).
		Register(Sum, SumShards{}).
		Exit(Done)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Scheduler: true,
		Workflows: []worker.Definer{health, rowcount}})
	if err != nil {
		return err
	}
	defer env.Close()
	events, err := env.Client.Events(ctx, &client.EventFilter{Types: []client.EventType{client.EventCompleted}})
	if err != nil {
		return err
	}
	defer events.Stop()
	remove, err := local.AddFlows(ctx, env,
		scheduler.Flow{ID: "health", Workflow: "health", Schedule: scheduler.Every(250 * time.Millisecond)},
		scheduler.Flow{ID: "rowcount", Workflow: "rowcount", Schedule: scheduler.Manual()})
	if err != nil {
		return err
	}
	defer remove()
	if err := env.Flows.Trigger(ctx, "rowcount"); err != nil {
		return err
	}
	// The first completed run of each flow.
	seen := map[string]bool{}
	lines := map[string]string{}
	for len(seen) < 2 {
		ev, err := events.Next(ctx)
		if err != nil {
			return fmt.Errorf("waiting for the flows' runs: %w", err)
		}
		if seen[ev.Workflow] {
			continue
		}
		var note string
		if err := ev.Output(&note); err != nil {
			return err
		}
		seen[ev.Workflow] = true
		lines[ev.Workflow] = fmt.Sprintf("%s: %s via %s: %s", ev.Workflow, ev.Type, strings.Join(ev.Path, " → "), note)
	}
	fmt.Fprintln(out, lines["health"])
	fmt.Fprintln(out, lines["rowcount"])
	return nil
}
