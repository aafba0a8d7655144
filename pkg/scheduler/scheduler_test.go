package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
)

const leaderTTL = time.Second

type testBundle struct {
	srv    *natstest.Server
	js     jetstream.JetStream
	client *scheduler.Client
	coord  *standInCoordinator
	names  protocol.Names
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{LeaderTTL: leaderTTL})
	_, js := srv.Connect(t)
	client, err := scheduler.NewClient(js, scheduler.ClientConfig{})
	require.NoError(t, err)
	return &testBundle{srv: srv, js: js, client: client, coord: startStandIn(t, js), names: protocol.MustNames("")}
}

// newScheduler starts a scheduler on its own connection, stopped in
// t.Cleanup. cfg gets short test intervals unless set.
func (b *testBundle) newScheduler(t *testing.T, cfg scheduler.Config) (*scheduler.Scheduler, *nats.Conn) {
	t.Helper()
	nc, js := b.srv.Connect(t)
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = 500 * time.Millisecond
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	s, err := scheduler.New(js, cfg)
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s, nc
}

func waitLeader(t *testing.T, timeout time.Duration, ss ...*scheduler.Scheduler) *scheduler.Scheduler {
	t.Helper()
	var lead *scheduler.Scheduler
	natstest.WaitFor(t, timeout, "one leader", func() bool {
		n := 0
		for _, s := range ss {
			if _, ok := s.Leading(); ok {
				n++
				lead = s
			}
		}
		return n == 1
	})
	return lead
}

func waitStatus(t *testing.T, c *scheduler.Client, id string, timeout time.Duration, what string, cond func(scheduler.FlowInfo) bool) scheduler.FlowInfo {
	t.Helper()
	var info scheduler.FlowInfo
	natstest.WaitFor(t, timeout, what, func() bool {
		var err error
		info, err = c.Status(context.Background(), id)
		return err == nil && cond(info)
	})
	return info
}

// quiet waits d and fails if flow starts more than slack runs meanwhile.
func (b *testBundle) quiet(t *testing.T, flow string, d time.Duration) { b.quietSlack(t, flow, d, 0) }

func (b *testBundle) quietSlack(t *testing.T, flow string, d time.Duration, slack int) {
	t.Helper()
	before := len(b.coord.runsOf(flow)) + slack
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return
		case <-b.coord.changed:
			require.LessOrEqual(t, len(b.coord.runsOf(flow)), before, "flow %s must not run", flow)
		}
	}
}

func TestCronExactlyOncePerSlotAcrossFailover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "tick", Workflow: "wf", Schedule: scheduler.Cron("* * * * * *")}))
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "tock", Workflow: "wf", Schedule: scheduler.Cron("* * * * * *"),
		Misfire: scheduler.MisfireCatchUp}))

	s1, nc1 := b.newScheduler(t, scheduler.Config{ID: "s1"})
	s2, nc2 := b.newScheduler(t, scheduler.Config{ID: "s2"})
	lead := waitLeader(t, 3*time.Second, s1, s2)
	epoch1, _ := lead.Leading()
	b.coord.waitRuns(t, "tick", 3, 5*time.Second)

	// Kill the leader: its connection dies, nothing is released.
	killedAt := time.Now()
	other := s2
	if lead == s1 {
		nc1.Close()
	} else {
		nc2.Close()
		other = s1
	}
	natstest.WaitFor(t, 3*time.Second, "takeover", func() bool { _, ok := other.Leading(); return ok })
	takeover := time.Since(killedAt)
	require.Less(t, takeover, leaderTTL+leaderTTL/3+time.Second, "takeover within TTL + one renewal interval")
	epoch2, _ := other.Leading()
	require.Greater(t, epoch2, epoch1)

	n := len(b.coord.runsOf("tick"))
	runs := b.coord.waitRuns(t, "tick", n+3, 5*time.Second)

	// Every slot ran at most once; slots are whole seconds; only slots in
	// the failover window are missing.
	seen := map[int64]bool{}
	for i, r := range runs {
		slot := time.Unix(0, r.Trigger.Slot)
		require.False(t, seen[r.Trigger.Slot], "slot %s ran twice", slot)
		seen[r.Trigger.Slot] = true
		require.Zero(t, slot.Nanosecond())
		require.Equal(t, layout.FlowRunID("tick", r.Trigger.Slot), r.Trigger.RunID)
		require.NotZero(t, r.Trigger.Epoch)
		if i > 0 {
			gap := r.Trigger.Slot - runs[i-1].Trigger.Slot
			require.Positive(t, gap)
			if gap > int64(time.Second) {
				missedFrom := time.Unix(0, runs[i-1].Trigger.Slot)
				require.WithinDuration(t, killedAt, missedFrom, 2*time.Second, "a gap only around the failover")
				require.LessOrEqual(t, gap, int64(takeover)+int64(2*time.Second))
			}
		}
	}
	require.Zero(t, b.coord.duplicates())
	info, err := b.client.Status(ctx, "tick")
	require.NoError(t, err)
	require.GreaterOrEqual(t, info.RunCount, uint64(len(runs)))

	// The catch-up flow: every slot at most once too, slots increasing.
	tock := b.coord.runsOf("tock")
	require.NotEmpty(t, tock)
	for i := 1; i < len(tock); i++ {
		require.Greater(t, tock[i].Trigger.Slot, tock[i-1].Trigger.Slot)
	}
}

// TestConcurrentClients updates one flow from many goroutines: every
// successful update bumps the version exactly once, none is lost.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "f", Workflow: "wf", Schedule: scheduler.Manual()}))
	kv, err := b.js.KeyValue(ctx, layout.SchedulesBucket(b.names))
	require.NoError(t, err)

	const workers, each = 6, 5
	var ok, conflicts atomic.Int64
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				err := b.client.Update(ctx, scheduler.Flow{ID: "f", Workflow: fmt.Sprintf("wf%d_%d", w, i), Schedule: scheduler.Manual()})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, scheduler.ErrConflict):
					conflicts.Add(1)
				default:
					t.Error(err)
				}
				if err := b.client.Reset(ctx, "f"); err != nil && !errors.Is(err, scheduler.ErrConflict) {
					t.Error(err)
				}
			}
		}()
	}
	for range workers {
		natstest.Recv(t, done, 30*time.Second)
	}
	require.EqualValues(t, workers*each, ok.Load()+conflicts.Load())
	e, err := kv.Get(ctx, layout.ScheduleKey("f"))
	require.NoError(t, err)
	var stored protocol.Schedule
	require.NoError(t, wirecodec.Decode(e.Value(), &stored, 0))
	require.EqualValues(t, 1+ok.Load(), stored.Version)
}

func TestGracefulStopHandsOverAndDrains(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.coord.setOutcome(func(tr *protocol.Trigger) (protocol.EventType, time.Duration) {
		return protocol.EventCompleted, 400 * time.Millisecond
	})
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "slow", Workflow: "wf", Schedule: scheduler.Manual()}))
	s1, _ := b.newScheduler(t, scheduler.Config{ID: "s1"})
	waitLeader(t, 3*time.Second, s1)
	s2, _ := b.newScheduler(t, scheduler.Config{ID: "s2"})

	require.NoError(t, b.client.Trigger(ctx, "slow"))
	b.coord.waitRuns(t, "slow", 1, 3*time.Second)
	require.ErrorIs(t, b.client.Trigger(ctx, "slow"), scheduler.ErrFlowRunning)

	// Stop waits for the running flow, then releases: s2 leads at once.
	require.NoError(t, s1.Stop(ctx))
	info, err := b.client.Status(ctx, "slow")
	require.NoError(t, err)
	require.Equal(t, scheduler.StatusCompleted, info.Status, "Stop returned after the run ended")
	stopped := time.Now()
	waitLeader(t, leaderTTL, s1, s2)
	require.Less(t, time.Since(stopped), leaderTTL/2)
	require.ErrorIs(t, s1.Start(ctx), scheduler.ErrAlreadyStarted)
	require.NoError(t, s1.Stop(ctx), "second Stop is a no-op")
}

// TestBackoffTripReset is cano's scheduler_backoff scenario.
func TestBackoffTripReset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	var healthy atomic.Bool
	b.coord.setOutcome(func(tr *protocol.Trigger) (protocol.EventType, time.Duration) {
		if healthy.Load() {
			return protocol.EventCompleted, 0
		}
		return protocol.EventFailed, 0
	})
	flow := scheduler.Flow{ID: "flaky", Workflow: "wf", Schedule: scheduler.Every(50 * time.Millisecond),
		Backoff: scheduler.BackoffPolicy{Initial: 150 * time.Millisecond, Multiplier: 2, MaxDelay: 2 * time.Second,
			Jitter: -1, StreakLimit: 4}}
	require.NoError(t, b.client.Add(ctx, flow))
	b.newScheduler(t, scheduler.Config{})

	info := waitStatus(t, b.client, "flaky", 5*time.Second, "tripped", func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusTripped
	})
	require.EqualValues(t, 4, info.FailureStreak)
	require.EqualValues(t, 4, info.RunCount)
	require.Equal(t, "flaky failure", info.LastError)
	runs := b.coord.runsOf("flaky")
	for _, r := range runs {
		t.Logf("run %s slot %s at %s", r.Trigger.RunID, time.Unix(0, r.Trigger.Slot).Format("05.000"), r.At.Format("05.000"))
	}
	require.Len(t, runs, 4)
	// Delays grow: 150 ms, 300 ms, 600 ms after each failure. An Every
	// flow's slot is when it became due, so slot gaps include the delays.
	for i, want := range []time.Duration{150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond} {
		gap := time.Duration(runs[i+1].Trigger.Slot - runs[i].Trigger.Slot)
		require.GreaterOrEqual(t, gap, want, "gap %d", i)
		require.Less(t, gap, want+3*time.Second, "gap %d", i) // loose: CI machines are slow
	}
	// Tripped: no scheduled run, and a manual trigger is refused.
	require.ErrorIs(t, b.client.Trigger(ctx, "flaky"), scheduler.ErrFlowTripped)
	b.quiet(t, "flaky", 300*time.Millisecond)

	healthy.Store(true)
	require.NoError(t, b.client.Reset(ctx, "flaky"))
	info = waitStatus(t, b.client, "flaky", 3*time.Second, "completed after reset", func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusCompleted
	})
	require.Zero(t, info.FailureStreak)
	require.Empty(t, info.LastError)
	require.Greater(t, len(b.coord.runsOf("flaky")), 4)
}

func TestTriggerBypassesBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.coord.setOutcome(func(tr *protocol.Trigger) (protocol.EventType, time.Duration) {
		if len(b.coord.runsOf(tr.Flow)) == 0 {
			return protocol.EventFailed, 0
		}
		return protocol.EventCompleted, 0
	})
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "m", Workflow: "wf", Schedule: scheduler.Manual(),
		Backoff: scheduler.BackoffPolicy{Initial: time.Hour, MaxDelay: time.Hour}}))
	b.newScheduler(t, scheduler.Config{})
	require.NoError(t, b.client.Trigger(ctx, "m"))
	info := waitStatus(t, b.client, "m", 3*time.Second, "backoff", func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusBackoff
	})
	require.WithinDuration(t, time.Now().Add(time.Hour), info.NextEligible, 10*time.Minute)
	require.NoError(t, b.client.Trigger(ctx, "m"))
	waitStatus(t, b.client, "m", 3*time.Second, "completed", func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusCompleted && i.RunCount == 2
	})
}

func TestCancelledRunIsNotAFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.coord.setOutcome(func(*protocol.Trigger) (protocol.EventType, time.Duration) {
		return protocol.EventCancelled, 0
	})
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "c", Workflow: "wf", Schedule: scheduler.Manual()}))
	b.newScheduler(t, scheduler.Config{})
	require.NoError(t, b.client.Trigger(ctx, "c"))
	info := waitStatus(t, b.client, "c", 3*time.Second, "idle after cancel", func(i scheduler.FlowInfo) bool {
		return i.RunCount == 1 && i.Status == scheduler.StatusIdle
	})
	require.Zero(t, info.FailureStreak)
	require.Empty(t, info.LastError)
}

// TestMixedFlows is cano's scheduler_mixed_workflows scenario.
func TestMixedFlows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.coord.setOutcome(func(tr *protocol.Trigger) (protocol.EventType, time.Duration) {
		if tr.Flow == "manual" {
			return protocol.EventCompleted, 300 * time.Millisecond
		}
		return protocol.EventCompleted, 0
	})
	flows := []scheduler.Flow{
		{ID: "cron", Workflow: "report", InitialState: "begin", Schedule: scheduler.Cron("* * * * * *")},
		{ID: "every", Workflow: "poll", Input: []byte{0x81, 0xa1, 'k', 0x01}, Schedule: scheduler.Every(200 * time.Millisecond)},
		{ID: "manual", Workflow: "cleanup", Schedule: scheduler.Manual()},
	}
	for _, f := range flows {
		require.NoError(t, b.client.Add(ctx, f))
	}
	list, err := b.client.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 3)
	for _, info := range list {
		require.Equal(t, scheduler.StatusIdle, info.Status)
	}
	b.newScheduler(t, scheduler.Config{})

	b.coord.waitRuns(t, "every", 3, 5*time.Second)
	cronRuns := b.coord.waitRuns(t, "cron", 2, 5*time.Second)
	require.Equal(t, "report", cronRuns[0].Trigger.Workflow)
	require.Equal(t, "begin", cronRuns[0].Trigger.InitialState)
	require.Empty(t, b.coord.runsOf("manual"), "manual flows run only when triggered")
	everyRuns := b.coord.runsOf("every")
	require.Equal(t, []byte{0x81, 0xa1, 'k', 0x01}, everyRuns[0].Trigger.Input)
	for i := 1; i < len(everyRuns); i++ {
		gap := time.Duration(everyRuns[i].Trigger.Slot - everyRuns[i-1].Trigger.Slot)
		require.GreaterOrEqual(t, gap, 200*time.Millisecond, "fixed delay after each run")
	}

	require.NoError(t, b.client.Trigger(ctx, "manual"))
	b.coord.waitRuns(t, "manual", 1, 3*time.Second)
	waitStatus(t, b.client, "manual", 2*time.Second, "running", func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusRunning
	})
	require.ErrorIs(t, b.client.Trigger(ctx, "manual"), scheduler.ErrFlowRunning)
	waitStatus(t, b.client, "manual", 3*time.Second, "completed", func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusCompleted
	})

	list, err = b.client.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"cron", "every", "manual"}, []string{list[0].Flow.ID, list[1].Flow.ID, list[2].Flow.ID})
	for _, info := range list {
		require.Positive(t, info.RunCount, info.Flow.ID)
		require.False(t, info.LastRun.IsZero(), info.Flow.ID)
	}
	require.EqualValues(t, 1, list[2].RunCount)
	require.Equal(t, scheduler.KindCron, list[0].Flow.Schedule.Kind)
	require.Equal(t, 200*time.Millisecond, list[1].Flow.Schedule.Every)
}

func TestRuntimeChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.newScheduler(t, scheduler.Config{})

	// An invalid cron expression is refused and changes nothing.
	err := b.client.Add(ctx, scheduler.Flow{ID: "bad", Workflow: "wf", Schedule: scheduler.Cron("61 * * * * *")})
	require.ErrorIs(t, err, scheduler.ErrInvalidFlow)
	require.ErrorContains(t, err, "invalid cron expression")
	_, err = b.client.Status(ctx, "bad")
	require.ErrorIs(t, err, scheduler.ErrFlowNotFound)

	// A flow added at run time fires.
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "live", Workflow: "wf1", Schedule: scheduler.Every(100 * time.Millisecond)}))
	require.ErrorIs(t, b.client.Add(ctx, scheduler.Flow{ID: "live", Workflow: "wf1", Schedule: scheduler.Manual()}), scheduler.ErrFlowExists)
	b.coord.waitRuns(t, "live", 2, 3*time.Second)

	// An invalid update changes nothing; a valid one replaces the old entry.
	err = b.client.Update(ctx, scheduler.Flow{ID: "live", Workflow: "wf2", Schedule: scheduler.Cron("not cron")})
	require.ErrorIs(t, err, scheduler.ErrInvalidFlow)
	info, err := b.client.Status(ctx, "live")
	require.NoError(t, err)
	require.Equal(t, "wf1", info.Flow.Workflow)
	require.NoError(t, b.client.Update(ctx, scheduler.Flow{ID: "live", Workflow: "wf2", Schedule: scheduler.Every(100 * time.Millisecond)}))
	natstest.WaitFor(t, 3*time.Second, "a run of the updated flow", func() bool {
		rs := b.coord.runsOf("live")
		return rs[len(rs)-1].Trigger.Workflow == "wf2"
	})
	require.NoError(t, b.client.Update(ctx, scheduler.Flow{ID: "live", Workflow: "wf2", Schedule: scheduler.Manual()}))
	waitStatus(t, b.client, "live", 2*time.Second, "not running", func(i scheduler.FlowInfo) bool {
		return i.Status != scheduler.StatusRunning
	})
	b.quiet(t, "live", 400*time.Millisecond) // the old Every entry stopped firing

	// A removed flow stops.
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "gone", Workflow: "wf", Schedule: scheduler.Every(100 * time.Millisecond)}))
	b.coord.waitRuns(t, "gone", 1, 3*time.Second)
	require.NoError(t, b.client.Remove(ctx, "gone"))
	// At most the run reserved before the removal was seen.
	b.quietSlack(t, "gone", 600*time.Millisecond, 1)
	_, err = b.client.Status(ctx, "gone")
	require.ErrorIs(t, err, scheduler.ErrFlowNotFound)
	require.ErrorIs(t, b.client.Remove(ctx, "gone"), scheduler.ErrFlowNotFound)
	require.ErrorIs(t, b.client.Trigger(ctx, "gone"), scheduler.ErrFlowNotFound)
}

func TestMisfireCatchUpAfterDowntime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	kv, err := b.js.KeyValue(ctx, layout.SchedulesBucket(b.names))
	require.NoError(t, err)
	// Two hourly flows whose last slot was two hours ago: the scheduler was
	// down since.
	twoHoursAgo := time.Now().Truncate(time.Hour).Add(-2 * time.Hour)
	for _, f := range []scheduler.Flow{
		{ID: "catchup", Workflow: "wf", Schedule: scheduler.Cron("0 0 * * * *"), Misfire: scheduler.MisfireCatchUp},
		{ID: "skip", Workflow: "wf", Schedule: scheduler.Cron("@hourly")},
	} {
		require.NoError(t, b.client.Add(ctx, f))
		st := protocol.FlowStatus{V: protocol.SchemaVersion, ID: f.ID, Phase: protocol.FlowCompleted,
			RunCount: 1, LastSlot: twoHoursAgo.UnixNano()}
		data, err := wirecodec.Encode(&st)
		require.NoError(t, err)
		_, err = kv.Put(ctx, layout.FlowStatusKey(f.ID), data)
		require.NoError(t, err)
	}
	b.newScheduler(t, scheduler.Config{})
	runs := b.coord.waitRuns(t, "catchup", 1, 3*time.Second)
	require.Equal(t, time.Now().Truncate(time.Hour).UnixNano(), runs[0].Trigger.Slot, "the latest missed slot, once")
	b.quiet(t, "catchup", 300*time.Millisecond)
	require.Len(t, b.coord.runsOf("catchup"), 1)
	require.Empty(t, b.coord.runsOf("skip"))
}

func TestFlowFileSeeds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "flows.json")
	write := func(every string) {
		require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, `{"flows": [
			{"id": "seeded", "workflow": "wf", "every": %q, "input": {"n": 1},
			 "backoff": {"initial": "2s", "streak_limit": 3}},
			{"id": "nightly", "workflow": "report", "cron": "0 0 2 * * *", "time_zone": "UTC", "misfire": "catch_up"}
		]}`, every), 0o600))
	}
	write("1h")
	b.newScheduler(t, scheduler.Config{FlowFile: path})
	runs := b.coord.waitRuns(t, "seeded", 1, 3*time.Second)
	require.NotEmpty(t, runs[0].Trigger.Input)
	info, err := b.client.Status(ctx, "nightly")
	require.NoError(t, err)
	require.Equal(t, scheduler.MisfireCatchUp, info.Flow.Misfire)

	// A second instance with a changed file updates the stored flow.
	write("2h")
	b.newScheduler(t, scheduler.Config{FlowFile: path})
	info, err = b.client.Status(ctx, "seeded")
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, info.Flow.Schedule.Every)
	require.EqualValues(t, 3, info.Flow.Backoff.StreakLimit)

	// A bad file is refused at Start.
	require.NoError(t, os.WriteFile(path, []byte(`{"flows": [{"id": "x", "workflow": "wf", "cron": "bogus"}]}`), 0o600))
	_, js := b.srv.Connect(t)
	s, err := scheduler.New(js, scheduler.Config{FlowFile: path})
	require.NoError(t, err)
	require.ErrorIs(t, s.Start(ctx), scheduler.ErrInvalidFlow)
}

// TestPauseHoldsAcrossLeaderChange pauses an Every flow, proves it does not
// fire while a control flow on the same leader fires past its next due
// time, hands leadership over, triggers it by hand (allowed while paused),
// and resumes it.
func TestPauseHoldsAcrossLeaderChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const every = 100 * time.Millisecond
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "sleepy", Workflow: "wf", Schedule: scheduler.Every(every)}))
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "control", Workflow: "wf", Schedule: scheduler.Every(every)}))
	s1, _ := b.newScheduler(t, scheduler.Config{ID: "s1"})
	waitLeader(t, 3*time.Second, s1)
	s2, _ := b.newScheduler(t, scheduler.Config{ID: "s2"})
	b.coord.waitRuns(t, "sleepy", 2, 5*time.Second)

	require.NoError(t, b.client.Pause(ctx, "sleepy"))
	require.NoError(t, b.client.Pause(ctx, "sleepy"), "pausing twice is fine")
	info := waitStatus(t, b.client, "sleepy", 3*time.Second, "paused and not running", func(i scheduler.FlowInfo) bool {
		return i.Paused && i.Status != scheduler.StatusRunning
	})
	require.Equal(t, "paused", info.StatusLabel())
	require.False(t, info.PausedAt.IsZero())
	n := len(b.coord.runsOf("sleepy"))

	// quietUntilPast waits until the control flow fired a slot later than
	// the paused flow's next due time (so the paused flow provably had its
	// chance), and checks the paused flow started nothing.
	quietUntilPast := func(what string) {
		t.Helper()
		due := info.NextEligible.UnixNano()
		for c := len(b.coord.runsOf("control")) + 1; ; c++ {
			rs := b.coord.waitRuns(t, "control", c, 5*time.Second)
			if rs[len(rs)-1].Trigger.Slot > due+int64(every) {
				break
			}
		}
		require.Len(t, b.coord.runsOf("sleepy"), n, "%s: a paused flow must not fire", what)
	}
	quietUntilPast("paused")

	// Leader change: the pause is in the stored status, so s2 keeps it.
	require.NoError(t, s1.Stop(ctx))
	require.Same(t, s2, waitLeader(t, 3*time.Second, s1, s2))
	quietUntilPast("after leader change")
	info, err := b.client.Status(ctx, "sleepy")
	require.NoError(t, err)
	require.True(t, info.Paused)

	// A manual trigger runs a paused flow (as Temporal's trigger-immediately);
	// it stays paused.
	require.NoError(t, b.client.Trigger(ctx, "sleepy"))
	b.coord.waitRuns(t, "sleepy", n+1, 5*time.Second)
	n++
	info = waitStatus(t, b.client, "sleepy", 3*time.Second, "manual run done, still paused", func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusCompleted && i.Paused && i.RunCount == uint64(n)
	})
	quietUntilPast("after the manual run")

	resumed := time.Now()
	require.NoError(t, b.client.Resume(ctx, "sleepy"))
	require.NoError(t, b.client.Resume(ctx, "sleepy"), "resuming twice is fine")
	rs := b.coord.waitRuns(t, "sleepy", n+2, 5*time.Second)
	info, err = b.client.Status(ctx, "sleepy")
	require.NoError(t, err)
	require.False(t, info.Paused)
	require.Equal(t, string(info.Status), info.StatusLabel())
	// No interval missed while paused was fired: the first run after
	// resume is for a time on the grid after the resume.
	require.Greater(t, rs[n].Trigger.Slot, resumed.UnixNano())

	require.ErrorIs(t, b.client.Pause(ctx, "nope"), scheduler.ErrFlowNotFound)
	require.ErrorIs(t, b.client.Resume(ctx, "nope"), scheduler.ErrFlowNotFound)
}

// TestPauseCronCatchUp: a paused catch-up cron flow fires no slot while
// paused, a new leader does not catch up the slots it missed while paused,
// and after Resume it fires only slots after the resume.
func TestPauseCronCatchUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "cron", Workflow: "wf", Schedule: scheduler.Cron("* * * * * *"),
		Misfire: scheduler.MisfireCatchUp}))
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "control", Workflow: "wf", Schedule: scheduler.Cron("* * * * * *")}))
	s1, _ := b.newScheduler(t, scheduler.Config{ID: "s1"})
	waitLeader(t, 3*time.Second, s1)
	s2, _ := b.newScheduler(t, scheduler.Config{ID: "s2"})
	b.coord.waitRuns(t, "cron", 1, 5*time.Second)

	require.NoError(t, b.client.Pause(ctx, "cron"))
	info := waitStatus(t, b.client, "cron", 3*time.Second, "paused and not running", func(i scheduler.FlowInfo) bool {
		return i.Paused && i.Status != scheduler.StatusRunning
	})
	n := len(b.coord.runsOf("cron"))
	// laterSlots waits for the control flow to fire two slots after t.
	laterSlots := func(after time.Time) {
		t.Helper()
		for c := len(b.coord.runsOf("control")) + 1; ; c++ {
			rs := b.coord.waitRuns(t, "control", c, 5*time.Second)
			if rs[len(rs)-1].Trigger.Slot > after.Add(time.Second).UnixNano() {
				return
			}
		}
	}
	laterSlots(info.PausedAt)
	require.Len(t, b.coord.runsOf("cron"), n, "a paused cron flow must not fire")

	// The new leader's catch-up does not run a slot missed while paused.
	require.NoError(t, s1.Stop(ctx))
	require.Same(t, s2, waitLeader(t, 3*time.Second, s1, s2))
	laterSlots(time.Now())
	require.Len(t, b.coord.runsOf("cron"), n, "no catch-up of slots missed while paused")
	info, err := b.client.Status(ctx, "cron")
	require.NoError(t, err)
	require.Zero(t, info.SkippedFires, "slots passed while paused are not counted as skipped")

	resumed := time.Now()
	require.NoError(t, b.client.Resume(ctx, "cron"))
	rs := b.coord.waitRuns(t, "cron", n+1, 5*time.Second)
	require.Greater(t, rs[n].Trigger.Slot, resumed.UnixNano(), "the first run after resume is for a later slot")
}
