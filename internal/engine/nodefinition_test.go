package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TestApplyWithoutDefinition: a run whose definition version is gone (Apply
// given no machine) can still be cancelled, still times out at its
// deadline, and ignores what it would ignore anyway; an input that needs
// the definition is refused with ErrNoDefinition and changes nothing.
func TestApplyWithoutDefinition(t *testing.T) {
	t.Parallel()
	wf := fsm.New[St]("gone", A).Register(A, noop{}).Exit(Done).TotalTimeout(time.Minute)
	m := machine(t, wf)
	running, _ := start(t, m, A)                        // deadline t0+1m
	scheduled, _ := startLater(t, m, t0.Add(time.Hour)) // no deadline yet
	startedLate, _ := fire(t, m, scheduled, protocol.TimerFire{V: 1, Kind: protocol.TimerStart, RunID: "run1",
		At: scheduled.StartAt}, t0.Add(time.Hour)) // deadline t0+1h1m
	ended, _, err := engine.Apply(m, running, ok(running, Done), t0.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, protocol.RunCompleted, ended.Status)

	cancel := engine.Input{Cancel: &protocol.CancelRequest{V: 1, RunID: "run1", Reason: "version deleted"}}
	deadline := func(rec *protocol.RunRecord) engine.Input {
		return engine.Input{Timer: &protocol.TimerFire{V: 1, Kind: protocol.TimerRunDeadline, RunID: "run1", At: rec.Deadline}}
	}
	result := func(step uint32) engine.Input {
		return engine.Input{Result: &protocol.TaskResult{V: 1, RunID: "run1", Step: step, Branch: -1, Status: protocol.ResultOK, Next: "done"}}
	}
	startTimer := func(at time.Time) engine.Input {
		return engine.Input{Timer: &protocol.TimerFire{V: 1, Kind: protocol.TimerStart, RunID: "run1", At: at.UnixNano()}}
	}

	for _, tc := range []struct {
		name   string
		rec    *protocol.RunRecord
		in     engine.Input
		now    time.Time
		status protocol.RunStatus // "" = unchanged
		event  protocol.EventType
		detail string
		errMsg string // the ended run's error message
		notice bool   // a cancel notice to running tasks
		refuse bool   // ErrNoDefinition
	}{
		{name: "a cancel ends a running run", rec: running, in: cancel, now: t0.Add(time.Second),
			status: protocol.RunCancelled, event: protocol.EventCancelled, errMsg: "cancelled: run cancelled: version deleted", notice: true},
		{name: "a cancel ends a scheduled run before its start", rec: scheduled, in: cancel, now: t0.Add(time.Second),
			status: protocol.RunCancelled, event: protocol.EventCancelled, detail: "before its start", errMsg: "cancelled: run cancelled: version deleted"},
		{name: "the deadline fails a running run", rec: running, in: deadline(running), now: t0.Add(time.Minute),
			status: protocol.RunFailed, event: protocol.EventFailed, notice: true,
			errMsg: "workflow_timeout: workflow exceeded its total timeout: elapsed 1m0s, limit 1m0s"},
		{name: "the deadline of a run started by its timer counts from its start", rec: startedLate, in: deadline(startedLate),
			now: t0.Add(time.Hour + time.Minute), status: protocol.RunFailed, event: protocol.EventFailed, notice: true,
			errMsg: "workflow_timeout: workflow exceeded its total timeout: elapsed 1m0s, limit 1m0s"},
		{name: "a result after the deadline fails the run", rec: running, in: result(0), now: t0.Add(2 * time.Minute),
			status: protocol.RunFailed, event: protocol.EventFailed, notice: true,
			errMsg: "workflow_timeout: workflow exceeded its total timeout: elapsed 2m0s, limit 1m0s"},
		{name: "a result before the deadline needs the definition", rec: running, in: result(0), now: t0.Add(time.Second), refuse: true},
		{name: "a late result changes nothing", rec: running, in: result(7), now: t0.Add(time.Second)},
		{name: "a result for a scheduled run changes nothing", rec: scheduled, in: result(0), now: t0.Add(time.Second)},
		{name: "the start timer needs the definition", rec: scheduled, in: startTimer(t0.Add(time.Hour)), now: t0.Add(time.Hour), refuse: true},
		{name: "a start timer for another time changes nothing", rec: scheduled, in: startTimer(t0.Add(time.Minute)), now: t0.Add(time.Minute)},
		{name: "a join timer of another step changes nothing", rec: running,
			in: engine.Input{Timer: &protocol.TimerFire{V: 1, Kind: protocol.TimerJoin, RunID: "run1", Step: 3, At: 1}}, now: t0.Add(time.Second)},
		{name: "an ended run changes nothing", rec: ended, in: cancel, now: t0.Add(time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, fx, err := engine.Apply(nil, tc.rec, tc.in, tc.now)
			if tc.refuse {
				require.ErrorIs(t, err, engine.ErrNoDefinition)
				require.ErrorIs(t, err, engine.ErrConfiguration)
				require.Same(t, tc.rec, out)
				require.False(t, fx.Changed)
				return
			}
			require.NoError(t, err)
			if tc.status == "" {
				require.Same(t, tc.rec, out, "unchanged")
				require.False(t, fx.Changed)
				return
			}
			require.True(t, fx.Changed)
			require.True(t, fx.Ended)
			require.Equal(t, tc.status, out.Status)
			require.Equal(t, tc.errMsg, out.Error.Message)
			require.Empty(t, fx.Commands)
			require.Equal(t, tc.notice, len(fx.Notices) == 1, "cancel notice: %v", fx.Notices)
			require.NotEmpty(t, fx.Events)
			last := fx.Events[len(fx.Events)-1]
			require.Equal(t, tc.event, last.Type)
			require.Equal(t, tc.detail, last.Detail)
			// The same input with the definition ends the run the same way.
			want, wfx, err := engine.Apply(m, tc.rec, tc.in, tc.now)
			require.NoError(t, err)
			require.Equal(t, want, out)
			require.Equal(t, wfx, fx)
		})
	}
}
