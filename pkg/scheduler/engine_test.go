package scheduler_test

import (
	"context"
	"errors"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// failing fails while its process-wide switch is on: cano's flaky flow.
var failing atomic.Bool

type maybeFail struct{}

func (maybeFail) Kind() string { return "maybe_fail" }
func (maybeFail) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	if failing.Load() {
		return fsm.Result{}, errors.New("upstream unavailable")
	}
	return fsm.Next("done"), nil
}

type noop struct{}

func (noop) Kind() string { return "noop_sched" }
func (noop) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next("done"), nil
}

type engineBundle struct {
	client *client.Client
	flows  *scheduler.Client
}

// setupEngine runs the real engine (coordinator, worker) and a scheduler
// on one embedded JetStream server.
func setupEngine(t *testing.T) *engineBundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{LeaderTTL: 2 * time.Second})
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := &fsm.Registry{}
	fsm.Register[maybeFail](reg)
	fsm.Register[noop](reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{
		fsm.New[string]("flaky_flow", "call").Register("call", maybeFail{}, fsm.Minimal()).Exit("done"),
		fsm.New[string]("report", "work").Register("work", noop{}, fsm.Minimal()).Exit("done"),
	}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 4})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	s, err := scheduler.New(js, scheduler.Config{DrainTimeout: -1})
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	return &engineBundle{client: cl, flows: s.Client()}
}

func (b *engineBundle) runStarts(t *testing.T, flow, workflow string) []time.Time {
	t.Helper()
	recs, err := b.client.List(context.Background(), &client.ListOpts{Workflow: workflow})
	require.NoError(t, err)
	var out []time.Time
	for _, r := range recs {
		if r.Flow == flow {
			out = append(out, r.CreatedAt)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// cano's scheduler_backoff, on the real engine: a flaky flow backs off with
// growing delays, trips after the streak limit, and runs again after reset.
func TestEngineSchedulerBackoff(t *testing.T) {
	failing.Store(true)
	b := setupEngine(t)
	ctx := context.Background()
	require.NoError(t, b.flows.Add(ctx, scheduler.Flow{ID: "flaky", Workflow: "flaky_flow",
		Schedule: scheduler.Every(20 * time.Millisecond),
		Backoff: scheduler.BackoffPolicy{Initial: 200 * time.Millisecond, Multiplier: 2, MaxDelay: 5 * time.Second,
			Jitter: -1, StreakLimit: 4}}))
	var info scheduler.FlowInfo
	natstest.WaitFor(t, 30*time.Second, "the flow to trip", func() bool {
		var err error
		info, err = b.flows.Status(ctx, "flaky")
		return err == nil && info.Status == scheduler.StatusTripped
	})
	require.Equal(t, uint32(4), info.FailureStreak)
	require.Contains(t, info.LastError, "upstream unavailable")
	starts := b.runStarts(t, "flaky", "flaky_flow")
	require.Len(t, starts, 4)
	// Delays grow: ≥200 ms, ≥400 ms, ≥800 ms after each failure.
	for i, min := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond} {
		gap := starts[i+1].Sub(starts[i])
		require.GreaterOrEqual(t, gap, min, "gap %d", i)
		if i > 0 {
			require.Greater(t, gap, starts[i].Sub(starts[i-1]), "gaps grow")
		}
	}
	// A tripped flow does not take manual triggers either.
	require.ErrorIs(t, b.flows.Trigger(ctx, "flaky"), scheduler.ErrFlowTripped)

	failing.Store(false)
	require.NoError(t, b.flows.Reset(ctx, "flaky"))
	natstest.WaitFor(t, 30*time.Second, "a successful run after reset", func() bool {
		info, err := b.flows.Status(ctx, "flaky")
		return err == nil && info.FailureStreak == 0 && info.RunCount > 4 && info.LastError == ""
	})
	t.Logf("backoff gaps: %v", []time.Duration{starts[1].Sub(starts[0]), starts[2].Sub(starts[1]), starts[3].Sub(starts[2])})
}

// cano's scheduler_mixed_workflows, on the real engine: cron, interval and
// manual flows together, with status read through the client.
func TestEngineSchedulerMixedFlows(t *testing.T) {
	b := setupEngine(t)
	ctx := context.Background()
	require.NoError(t, b.flows.Add(ctx, scheduler.Flow{ID: "cron", Workflow: "report", Schedule: scheduler.Cron("* * * * * *")}))
	require.NoError(t, b.flows.Add(ctx, scheduler.Flow{ID: "every", Workflow: "report", Schedule: scheduler.Every(300 * time.Millisecond)}))
	require.NoError(t, b.flows.Add(ctx, scheduler.Flow{ID: "manual", Workflow: "report", Schedule: scheduler.Manual()}))
	require.Error(t, b.flows.Add(ctx, scheduler.Flow{ID: "bad", Workflow: "report", Schedule: scheduler.Cron("61 * * * * *")}))
	require.NoError(t, b.flows.Trigger(ctx, "manual"))
	natstest.WaitFor(t, 30*time.Second, "every flow to have run", func() bool {
		list, err := b.flows.List(ctx)
		if err != nil || len(list) != 3 {
			return false
		}
		want := map[string]uint64{"cron": 2, "every": 3, "manual": 1}
		for _, fi := range list {
			if fi.RunCount < want[fi.Flow.ID] || fi.Status == scheduler.StatusRunning && fi.Flow.ID == "manual" {
				return false
			}
		}
		return true
	})
	list, err := b.flows.List(ctx)
	require.NoError(t, err)
	for _, fi := range list {
		require.Zero(t, fi.FailureStreak, fi.Flow.ID)
		t.Logf("flow %-6s status %-9s runs %d", fi.Flow.ID, fi.Status, fi.RunCount)
	}
	recs, err := b.client.List(ctx, &client.ListOpts{Workflow: "report", Status: client.RunCompleted})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(recs), 6)
	require.NoError(t, b.flows.Remove(ctx, "every"))
	_, err = b.flows.Status(ctx, "every")
	require.ErrorIs(t, err, scheduler.ErrFlowNotFound)
}
