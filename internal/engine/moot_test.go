package engine_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TestMootTimers: a step that makes a timer scheduled earlier moot lists it
// in Effects.Unschedule — a total timeout's deadline when the run ends
// before it, a join timeout when its split ends before it, a start timer
// when the run ends before its start — but never the timer being applied
// nor one already due; a step that ends the run schedules no timer.
func TestMootTimers(t *testing.T) {
	t.Parallel()
	timed := fsm.New[St]("timed", A).Register(A, noop{}).Exit(Done).TotalTimeout(time.Minute)
	branches := []fsm.Task{noop{"0"}, noop{"1"}}
	split := fsm.New[St]("split", Split).RegisterSplit(Split, branches, fsm.JoinConfig[St]{
		Strategy: join.All(), JoinState: B, Timeout: time.Minute}).Register(B, noop{}).Exit(Done)
	deadline := protocol.TimerFire{V: protocol.SchemaVersion, Kind: protocol.TimerRunDeadline, RunID: "run1", At: t0.Add(time.Minute).UnixNano()}
	joinTimer := protocol.TimerFire{V: protocol.SchemaVersion, Kind: protocol.TimerJoin, RunID: "run1", At: t0.Add(time.Minute).UnixNano()}
	cancel := engine.Input{Cancel: &protocol.CancelRequest{V: 1, RunID: "run1"}}
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	type step struct {
		in  func(rec *protocol.RunRecord) engine.Input
		now time.Time
	}
	for _, tc := range []struct {
		name    string
		wf      *fsm.Workflow[St]
		initial St
		steps   []step // applied after the start; the last one is checked
		want    []protocol.TimerFire
	}{
		{"completed before its deadline", timed, A,
			[]step{{func(rec *protocol.RunRecord) engine.Input { return ok(rec, Done) }, at(time.Second)}},
			[]protocol.TimerFire{deadline}},
		{"cancelled before its deadline", timed, A,
			[]step{{func(*protocol.RunRecord) engine.Input { return cancel }, at(time.Second)}},
			[]protocol.TimerFire{deadline}},
		{"timed out by its deadline timer: the timer applied is not listed", timed, A,
			[]step{{func(*protocol.RunRecord) engine.Input { return engine.Input{Timer: &deadline} }, at(time.Minute)}},
			nil},
		{"a result after its deadline: the deadline is due", timed, A,
			[]step{{func(rec *protocol.RunRecord) engine.Input { return ok(rec, Done) }, at(2 * time.Minute)}},
			nil},
		{"a step that does not end the run", timed, A,
			[]step{{func(rec *protocol.RunRecord) engine.Input { return ok(rec, A) }, at(time.Second)}},
			nil},
		{"a split joined before its timeout", split, Split,
			[]step{
				{func(rec *protocol.RunRecord) engine.Input { return branch(rec, 0, true) }, at(time.Second)},
				{func(rec *protocol.RunRecord) engine.Input { return branch(rec, 1, true) }, at(time.Second)},
			},
			[]protocol.TimerFire{joinTimer}},
		{"a split cancelled before its timeout", split, Split,
			[]step{{func(*protocol.RunRecord) engine.Input { return cancel }, at(time.Second)}},
			[]protocol.TimerFire{joinTimer}},
		{"a split ended by its join timeout: the timer applied is not listed", split, Split,
			[]step{{func(*protocol.RunRecord) engine.Input { return engine.Input{Timer: &joinTimer} }, at(time.Minute)}},
			nil},
		{"one branch of two: the split goes on", split, Split,
			[]step{{func(rec *protocol.RunRecord) engine.Input { return branch(rec, 0, true) }, at(time.Second)}},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := machine(t, tc.wf)
			rec, fx := start(t, m, tc.initial)
			require.Len(t, fx.Timers, 1, "the start schedules the timer")
			for _, s := range tc.steps {
				var err error
				rec, fx, err = engine.Apply(m, rec, s.in(rec), s.now)
				require.NoError(t, err)
				require.True(t, fx.Changed)
			}
			require.Equal(t, tc.want, fx.Unschedule)
			if rec.Status.Terminal() {
				require.Empty(t, fx.Timers, "an ended run schedules nothing")
			}
		})
	}

	t.Run("an initial exit with a total timeout schedules no deadline", func(t *testing.T) {
		m := machine(t, timed)
		rec, fx := start(t, m, Done)
		require.Equal(t, protocol.RunCompleted, rec.Status)
		require.Empty(t, fx.Timers)
		require.Empty(t, fx.Unschedule)
	})

	t.Run("a scheduled run whose start enters an exit", func(t *testing.T) {
		m := machine(t, timed)
		rec, fx, err := engine.Start(m, &protocol.Trigger{V: protocol.SchemaVersion4, Workflow: "timed", InitialState: string(Done),
			StartAt: at(time.Hour).UnixNano()}, "run1", t0)
		require.NoError(t, err)
		require.Len(t, fx.Timers, 1)
		out, sfx := fire(t, m, rec, fx.Timers[0], at(time.Hour))
		require.Equal(t, protocol.RunCompleted, out.Status)
		require.Empty(t, sfx.Timers, "no deadline for a run that ended as it started")
		require.Empty(t, sfx.Unschedule, "the start timer is the one that fired")
	})
}
