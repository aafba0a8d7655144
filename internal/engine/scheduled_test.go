package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// startLater starts a run of m whose trigger asks to start at at.
func startLater(t *testing.T, m *engine.Machine, at time.Time) (*protocol.RunRecord, engine.Effects) {
	t.Helper()
	rec, fx, err := engine.Start(m, &protocol.Trigger{V: protocol.SchemaVersion4, Workflow: m.Definition().Name,
		StartAt: at.UnixNano()}, "run1", t0)
	require.NoError(t, err)
	return rec, fx
}

// fire is the start timer of rec firing at now.
func fire(t *testing.T, m *engine.Machine, rec *protocol.RunRecord, tf protocol.TimerFire, now time.Time) (*protocol.RunRecord, engine.Effects) {
	t.Helper()
	out, fx, err := engine.Apply(m, rec, engine.Input{Timer: &tf}, now)
	require.NoError(t, err)
	return out, fx
}

// TestScheduledStart: a trigger with a start time creates the run at once,
// scheduled, with a start timer and nothing dispatched; the timer starts it
// (total timeout counted from then); a cancel before ends it; an early,
// late or repeated timer and any result change nothing; what the record
// owes is the start timer.
func TestScheduledStart(t *testing.T) {
	t.Parallel()
	wf := fsm.New[St]("later", A).Register(A, noop{}).Exit(Done).TotalTimeout(time.Minute)
	at := t0.Add(time.Hour)

	t.Run("created scheduled, with a start timer and nothing dispatched", func(t *testing.T) {
		m := machine(t, wf)
		rec, fx := startLater(t, m, at)
		require.Equal(t, protocol.RunScheduled, rec.Status)
		require.False(t, rec.Status.Terminal())
		require.Equal(t, at.UnixNano(), rec.StartAt)
		require.Equal(t, t0.UnixNano(), rec.CreatedAt)
		require.Zero(t, rec.Deadline, "the total timeout counts from the start")
		require.Equal(t, "a", rec.State)
		require.Empty(t, rec.History, "no state entered yet")
		require.True(t, fx.Changed)
		require.False(t, fx.Ended)
		require.Empty(t, fx.Commands)
		require.Equal(t, []protocol.TimerFire{{V: 1, Kind: protocol.TimerStart, RunID: "run1", At: at.UnixNano()}}, fx.Timers)
		require.Len(t, fx.Events, 1)
		require.Equal(t, protocol.EventScheduled, fx.Events[0].Type)
		require.Equal(t, protocol.RunScheduled, fx.Events[0].Status)
		require.Equal(t, "starts at "+at.UTC().Format(time.RFC3339Nano), fx.Events[0].Detail)

		owed, err := engine.Owed(m, rec, nil)
		require.NoError(t, err)
		require.Equal(t, fx.Timers, owed.Timers, "a lost start timer is owed")
		require.Empty(t, owed.Commands)
	})

	t.Run("the start timer starts it", func(t *testing.T) {
		m := machine(t, wf)
		rec, fx := startLater(t, m, at)
		late := at.Add(3 * time.Second) // the timer may fire late (no coordinator running)
		rec, fx = fire(t, m, rec, fx.Timers[0], late)
		require.Equal(t, protocol.RunRunning, rec.Status)
		require.Equal(t, at.UnixNano(), rec.StartAt, "kept: when it was to start")
		require.Empty(t, fx.Unschedule, "the broker fired it: nothing to remove")
		require.Equal(t, late.Add(time.Minute).UnixNano(), rec.Deadline)
		require.Len(t, fx.Commands, 1)
		require.Equal(t, "a", fx.Commands[0].State)
		require.Equal(t, []protocol.TimerFire{{V: 1, Kind: protocol.TimerRunDeadline, RunID: "run1", At: rec.Deadline}}, fx.Timers)
		require.Len(t, fx.Events, 1)
		require.Equal(t, protocol.EventStarted, fx.Events[0].Type)
		require.Equal(t, "as scheduled for "+at.UTC().Format(time.RFC3339Nano), fx.Events[0].Detail, "watchers tell it from a new run")
		require.Len(t, rec.History, 1)
		require.Equal(t, late.UnixNano(), rec.History[0].Entered)

		// Again (a redelivered timer): nothing changes.
		again, fx2, err := engine.Apply(m, rec, engine.Input{Timer: &protocol.TimerFire{V: 1, Kind: protocol.TimerStart,
			RunID: "run1", At: at.UnixNano()}}, late.Add(time.Second))
		require.NoError(t, err)
		require.False(t, fx2.Changed)
		require.Same(t, rec, again)

		// The total timeout counts from the start, not from the trigger.
		out, _, err := engine.Apply(m, rec, engine.Input{Timer: &protocol.TimerFire{V: 1, Kind: protocol.TimerRunDeadline,
			RunID: "run1", At: rec.Deadline}}, time.Unix(0, rec.Deadline))
		require.NoError(t, err)
		require.Equal(t, protocol.RunFailed, out.Status)
		require.ErrorIs(t, fsmbridge.FromErrorInfo(out.Error), fsm.ErrWorkflowTimeout)
		require.Contains(t, out.Error.Message, "elapsed 1m0s, limit 1m0s")
	})

	t.Run("a cancel before the start ends it", func(t *testing.T) {
		m := machine(t, wf)
		rec, fx := startLater(t, m, at)
		rec, cfx, err := engine.Apply(m, rec, engine.Input{Cancel: &protocol.CancelRequest{V: 1, RunID: "run1", Reason: "not needed"}}, t0.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, protocol.RunCancelled, rec.Status)
		require.True(t, cfx.Ended)
		require.Empty(t, cfx.Commands)
		require.Empty(t, cfx.Notices, "nothing ran, nothing to stop")
		require.Len(t, cfx.Events, 1)
		require.Equal(t, protocol.EventCancelled, cfx.Events[0].Type)
		require.Equal(t, "before its start", cfx.Events[0].Detail)
		require.ErrorIs(t, fsmbridge.FromErrorInfo(rec.Error), fsm.ErrCancelled)
		require.Equal(t, fx.Timers, cfx.Unschedule, "the start timer is moot")
		// The start timer then fires (it was not removed in time): nothing.
		_, sfx := fire(t, m, rec, fx.Timers[0], at)
		require.False(t, sfx.Changed)
	})

	t.Run("the start timer applied ahead of its time starts it now", func(t *testing.T) {
		m := machine(t, wf)
		rec, fx := startLater(t, m, at)
		now := at.Add(-30 * time.Minute) // client.StartNow
		out, sfx := fire(t, m, rec, fx.Timers[0], now)
		require.Equal(t, protocol.RunRunning, out.Status)
		require.Equal(t, now.UnixNano(), out.StartAt, "its start is now")
		require.Equal(t, now.Add(time.Minute).UnixNano(), out.Deadline, "the total timeout counts from now")
		require.Len(t, sfx.Commands, 1)
		require.Equal(t, protocol.EventStarted, sfx.Events[0].Type)
		require.Equal(t, "ahead of its schedule for "+at.UTC().Format(time.RFC3339Nano), sfx.Events[0].Detail)
		require.Equal(t, fx.Timers, sfx.Unschedule, "the schedule still waiting is moot")
		require.Equal(t, at.UnixNano(), rec.StartAt, "the record it was applied to is unchanged")
		// The schedule then fires at its time (it was not removed in time): nothing.
		_, lfx := fire(t, m, out, fx.Timers[0], at)
		require.False(t, lfx.Changed)
	})

	t.Run("other inputs change nothing before the start", func(t *testing.T) {
		m := machine(t, wf)
		rec, _ := startLater(t, m, at)
		for name, in := range map[string]engine.Input{
			"a result":                    ok(rec, Done),
			"a start timer of another at": {Timer: &protocol.TimerFire{V: 1, Kind: protocol.TimerStart, RunID: "run1", At: at.UnixNano() + 1}},
			"a deadline timer":            {Timer: &protocol.TimerFire{V: 1, Kind: protocol.TimerRunDeadline, RunID: "run1", At: at.UnixNano()}},
		} {
			out, fx, err := engine.Apply(m, rec, in, at)
			require.NoError(t, err, name)
			require.False(t, fx.Changed, name)
			require.Same(t, rec, out, name)
		}
	})

	t.Run("a start time not after now starts at once", func(t *testing.T) {
		m := machine(t, wf)
		for _, when := range []time.Time{t0, t0.Add(-time.Hour)} {
			rec, fx := startLater(t, m, when)
			require.Equal(t, protocol.RunRunning, rec.Status)
			require.Zero(t, rec.StartAt)
			require.Len(t, fx.Commands, 1)
		}
	})

	t.Run("an exit as initial state completes at the start", func(t *testing.T) {
		m := machine(t, fsm.New[St]("later_exit", Done).Register(A, noop{}).Exit(Done))
		rec, fx := startLater(t, m, at)
		require.Equal(t, protocol.RunScheduled, rec.Status)
		rec, fx = fire(t, m, rec, fx.Timers[0], at)
		require.Equal(t, protocol.RunCompleted, rec.Status)
		require.True(t, fx.Ended)
	})
}
