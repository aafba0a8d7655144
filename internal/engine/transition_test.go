package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

type St string

const (
	A, B, C, Done, Rejected, Ghost, Split St = "a", "b", "c", "done", "rejected", "ghost", "split"
)

type noop struct {
	Name string `msgpack:"name"`
}

func (noop) Kind() string { return "noop" }
func (noop) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}

var t0 = time.Unix(1_700_000_000, 0)

func machine(t *testing.T, wf *fsm.Workflow[St]) *engine.Machine {
	t.Helper()
	d, err := wf.Definition()
	require.NoError(t, err)
	m, err := engine.Compile(d)
	require.NoError(t, err)
	return m
}

func ok(rec *protocol.RunRecord, next St) engine.Input {
	return engine.Input{Result: &protocol.TaskResult{V: 1, RunID: rec.ID, Step: rec.Step, Branch: -1, Status: protocol.ResultOK, Next: string(next)}}
}

func branch(rec *protocol.RunRecord, i int32, good bool) engine.Input {
	r := &protocol.TaskResult{V: 1, RunID: rec.ID, Step: rec.Step, Branch: i, Status: protocol.ResultOK}
	if !good {
		r.Status = protocol.ResultFailed
		r.Error = &protocol.ErrorInfo{Category: protocol.CategoryTaskExecution, Message: "boom"}
	}
	return engine.Input{Result: r}
}

func start(t *testing.T, m *engine.Machine, initial St) (*protocol.RunRecord, engine.Effects) {
	t.Helper()
	rec, fx, err := engine.Start(m, &protocol.Trigger{V: 1, Workflow: m.Definition().Name, InitialState: string(initial)}, "run1", t0)
	require.NoError(t, err)
	return rec, fx
}

func apply(t *testing.T, m *engine.Machine, rec *protocol.RunRecord, in engine.Input) (*protocol.RunRecord, engine.Effects) {
	t.Helper()
	out, fx, err := engine.Apply(m, rec, in, t0.Add(time.Second))
	require.NoError(t, err)
	return out, fx
}

func TestTransitions(t *testing.T) {
	t.Parallel()
	chain := fsm.New[St]("chain", A).Register(A, noop{}).Register(B, noop{}).Register(C, noop{}).Exit(Done)

	t.Run("linear chain", func(t *testing.T) {
		m := machine(t, chain)
		rec, fx := start(t, m, A)
		require.Len(t, fx.Commands, 1)
		require.Equal(t, "a", fx.Commands[0].State)
		for _, next := range []St{B, C, Done} {
			rec, fx = apply(t, m, rec, ok(rec, next))
			require.True(t, fx.Changed)
		}
		require.Equal(t, protocol.RunCompleted, rec.Status)
		require.Equal(t, []string{"a", "b", "c", "done"}, rec.Path)
		require.True(t, fx.Ended)
		require.Empty(t, fx.Commands)
		require.Equal(t, protocol.EventCompleted, fx.Events[len(fx.Events)-1].Type)
	})

	t.Run("cycle: negotiation", func(t *testing.T) {
		wf := fsm.New[St]("negotiation", A).Register(A, noop{}).Register(B, noop{}).Exit(Done, Rejected)
		m := machine(t, wf)
		rec, _ := start(t, m, A)
		for _, next := range []St{B, A, B, A, B, Rejected} {
			rec, _ = apply(t, m, rec, ok(rec, next))
		}
		require.Equal(t, protocol.RunCompleted, rec.Status)
		require.Equal(t, "rejected", rec.State)
		require.Equal(t, []string{"a", "b", "a", "b", "a", "b", "rejected"}, rec.Path)
	})

	t.Run("task names an unregistered state", func(t *testing.T) {
		m := machine(t, chain)
		rec, _ := start(t, m, A)
		rec, _ = apply(t, m, rec, ok(rec, B))
		rec, fx := apply(t, m, rec, ok(rec, Ghost))
		require.Equal(t, protocol.RunFailed, rec.Status)
		require.True(t, fx.Ended)
		// The run fails in the state whose task chose, and never enters
		// the unknown one: no "state ghost" event, and every name agrees.
		require.Equal(t, "b", rec.State)
		require.Equal(t, []string{"a", "b"}, rec.Path)
		require.Len(t, fx.Events, 1)
		require.Equal(t, protocol.EventFailed, fx.Events[0].Type)
		require.Equal(t, "b", fx.Events[0].State)
		err := fsmbridge.FromErrorInfo(rec.Error)
		require.ErrorIs(t, err, fsm.ErrWorkflow)
		require.ErrorContains(t, err, `in state "b" (attempt 1, path a → b): workflow: its task chose state "ghost", which the workflow does not define`)
		var se *fsm.StateError
		require.ErrorAs(t, err, &se)
		require.Equal(t, "b", se.State)
		require.Equal(t, []string{"a", "b"}, se.Path)
	})

	t.Run("unknown initial state creates no run", func(t *testing.T) {
		m := machine(t, chain)
		rec, _, err := engine.Start(m, &protocol.Trigger{V: 1, Workflow: "chain", InitialState: "nope"}, "r", t0)
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		require.Nil(t, rec)
	})

	t.Run("initial state that is an exit completes at once", func(t *testing.T) {
		m := machine(t, chain)
		rec, fx := start(t, m, Done)
		require.Equal(t, protocol.RunCompleted, rec.Status)
		require.Empty(t, fx.Commands)
		require.True(t, fx.Ended)
	})

	t.Run("total timeout", func(t *testing.T) {
		m := machine(t, fsm.New[St]("slow", A).Register(A, noop{}).Register(B, noop{}).Exit(Done).TotalTimeout(time.Second))
		rec, fx := start(t, m, A)
		require.Len(t, fx.Timers, 1)
		require.Equal(t, t0.Add(time.Second).UnixNano(), fx.Timers[0].At)
		out, fx, err := engine.Apply(m, rec, engine.Input{Timer: &fx.Timers[0]}, t0.Add(time.Second))
		require.NoError(t, err)
		require.Equal(t, protocol.RunFailed, out.Status)
		require.ErrorIs(t, fsmbridge.FromErrorInfo(out.Error), fsm.ErrWorkflowTimeout)
		require.Len(t, fx.Notices, 1)
		// A result after the deadline also times the run out.
		late, _, err := engine.Apply(m, rec, ok(rec, B), t0.Add(2*time.Second))
		require.NoError(t, err)
		require.ErrorIs(t, fsmbridge.FromErrorInfo(late.Error), fsm.ErrWorkflowTimeout)
	})

	t.Run("duplicate and late results change nothing", func(t *testing.T) {
		m := machine(t, chain)
		rec, _ := start(t, m, A)
		first := ok(rec, B)
		rec, _ = apply(t, m, rec, first)
		again, fx := apply(t, m, rec, first)
		require.False(t, fx.Changed)
		require.Same(t, rec, again)
		done, _ := apply(t, m, rec, ok(rec, C))
		done, _ = apply(t, m, done, ok(done, Done))
		after, fx := apply(t, m, done, ok(done, A))
		require.False(t, fx.Changed)
		require.Same(t, done, after)
	})

	t.Run("transition cap", func(t *testing.T) {
		wf := fsm.New[St]("loop", A).Register(A, noop{}).Register(B, noop{}).Exit(Done).MaxTransitions(5)
		m := machine(t, wf)
		rec, _ := start(t, m, A)
		for i := 0; i < 10 && !rec.Status.Terminal(); i++ {
			next := B
			if rec.State == "b" {
				next = A
			}
			rec, _ = apply(t, m, rec, ok(rec, next))
		}
		require.Equal(t, protocol.RunFailed, rec.Status)
		require.Len(t, rec.Path, 5)
		require.Contains(t, rec.Error.Message, "transition cap reached: 5")
	})

	t.Run("cancel ends the run and notifies workers", func(t *testing.T) {
		m := machine(t, chain)
		rec, _ := start(t, m, A)
		rec, fx := apply(t, m, rec, engine.Input{Cancel: &protocol.CancelRequest{V: 1, RunID: rec.ID}})
		require.Equal(t, protocol.RunCancelled, rec.Status)
		require.ErrorIs(t, fsmbridge.FromErrorInfo(rec.Error), fsm.ErrCancelled)
		require.True(t, fx.Notices[0].All)
		// the timeout firing later changes nothing: cancel wins.
		_, fx = apply(t, m, rec, engine.Input{Timer: &protocol.TimerFire{Kind: protocol.TimerRunDeadline, RunID: rec.ID}})
		require.False(t, fx.Changed)
	})

	t.Run("failed task fails the run with state context", func(t *testing.T) {
		m := machine(t, chain)
		rec, _ := start(t, m, A)
		in := engine.Input{Result: &protocol.TaskResult{RunID: rec.ID, Step: 0, Branch: -1, Status: protocol.ResultFailed, Attempts: 4,
			Error: &protocol.ErrorInfo{Category: protocol.CategoryRetryExhausted, Message: "x", Attempts: 4}}}
		rec, _ = apply(t, m, rec, in)
		err := fsmbridge.FromErrorInfo(rec.Error)
		var re *fsm.RetryExhaustedError
		require.ErrorAs(t, err, &re)
		require.Equal(t, uint32(4), re.Attempts)
		var se *fsm.StateError
		require.ErrorAs(t, err, &se)
		require.Equal(t, "a", se.State)
	})
}

func TestSplitTransitions(t *testing.T) {
	t.Parallel()
	branches := []fsm.Task{noop{"0"}, noop{"1"}, noop{"2"}, noop{"3"}}
	wf := func(s join.Strategy, bulkhead int, timeout time.Duration) *fsm.Workflow[St] {
		return fsm.New[St]("split", Split).RegisterSplit(Split, branches, fsm.JoinConfig[St]{
			Strategy: s, JoinState: B, Bulkhead: bulkhead, Timeout: timeout}).Register(B, noop{}).Exit(Done)
	}

	t.Run("quorum decides at the threshold and cancels the rest", func(t *testing.T) {
		m := machine(t, wf(join.Quorum(2), 0, 0))
		rec, fx := start(t, m, Split)
		require.Len(t, fx.Commands, 4)
		rec, fx = apply(t, m, rec, branch(rec, 3, true))
		require.Equal(t, "split", rec.State)
		splitStep := rec.Step
		rec, fx = apply(t, m, rec, branch(rec, 1, true))
		require.Equal(t, "b", rec.State)
		require.Equal(t, splitStep, rec.JoinOf)
		require.Equal(t, uint32(4), rec.JoinBranches)
		require.Len(t, fx.Notices, 1)
		require.Len(t, fx.Commands, 1)
		require.Equal(t, uint32(4), fx.Commands[0].JoinBranches)
		// a late branch of the old split changes nothing
		late := engine.Input{Result: &protocol.TaskResult{RunID: rec.ID, Step: splitStep, Branch: 0, Status: protocol.ResultOK}}
		_, fx = apply(t, m, rec, late)
		require.False(t, fx.Changed)
	})

	t.Run("all fails at the first failure", func(t *testing.T) {
		m := machine(t, wf(join.All(), 0, 0))
		rec, _ := start(t, m, Split)
		rec, _ = apply(t, m, rec, branch(rec, 0, true))
		rec, _ = apply(t, m, rec, branch(rec, 2, false))
		require.Equal(t, protocol.RunFailed, rec.Status)
		require.Contains(t, rec.Error.Message, "join condition not met: 1 of 4 tasks completed successfully, strategy: all; errors: task 2: boom")
	})

	t.Run("a branch is counted once", func(t *testing.T) {
		m := machine(t, wf(join.All(), 0, 0))
		rec, _ := start(t, m, Split)
		in := branch(rec, 0, true)
		rec, _ = apply(t, m, rec, in)
		_, fx := apply(t, m, rec, in)
		require.False(t, fx.Changed)
		require.Equal(t, uint32(1), rec.Split.Succeeded)
	})

	t.Run("bulkhead dispatches as slots free", func(t *testing.T) {
		m := machine(t, wf(join.All(), 2, 0))
		rec, fx := start(t, m, Split)
		require.Len(t, fx.Commands, 2)
		rec, fx = apply(t, m, rec, branch(rec, 0, true))
		require.Len(t, fx.Commands, 1)
		require.Equal(t, int32(2), fx.Commands[0].Branch)
		rec, _ = apply(t, m, rec, branch(rec, 1, true))
		rec, _ = apply(t, m, rec, branch(rec, 2, true))
		rec, fx = apply(t, m, rec, branch(rec, 3, true))
		require.Equal(t, "b", rec.State)
	})

	t.Run("join timeout: partial timeout proceeds with one completed", func(t *testing.T) {
		m := machine(t, wf(join.PartialTimeout(), 0, time.Second))
		rec, fx := start(t, m, Split)
		timer := fx.Timers[0]
		rec, _ = apply(t, m, rec, branch(rec, 1, false))
		rec, _ = apply(t, m, rec, engine.Input{Timer: &timer})
		require.Equal(t, "b", rec.State)
	})

	t.Run("join timeout: quorum fails", func(t *testing.T) {
		m := machine(t, wf(join.Quorum(3), 0, time.Second))
		rec, fx := start(t, m, Split)
		timer := fx.Timers[0]
		rec, _ = apply(t, m, rec, branch(rec, 1, true))
		rec, _ = apply(t, m, rec, engine.Input{Timer: &timer})
		require.Equal(t, protocol.RunFailed, rec.Status)
		require.Contains(t, rec.Error.Message, "split task timeout exceeded")
	})

	t.Run("dynamic split", func(t *testing.T) {
		m := machine(t, fsm.New[St]("dyn", A).Register(A, noop{}).Register(B, noop{}).Exit(Done))
		rec, _ := start(t, m, A)
		res := fsm.SplitInto(fsm.JoinConfig[St]{Strategy: join.All(), JoinState: B}, noop{"x"}, noop{"y"}, noop{"z"})
		spec, err := fsmbridge.SplitSpec(res)
		require.NoError(t, err)
		in := engine.Input{Result: &protocol.TaskResult{RunID: rec.ID, Step: 0, Branch: -1, Status: protocol.ResultOK, Split: spec}}
		rec, fx := apply(t, m, rec, in)
		require.NotNil(t, fx.PutSplitSpec)
		require.Len(t, fx.Commands, 3)
		// the next results need the spec only to dispatch more; give it as the shell would
		for i := int32(0); i < 3; i++ {
			in := branch(rec, i, true)
			in.DynamicSplit = spec
			rec, fx = apply(t, m, rec, in)
		}
		require.Equal(t, "b", rec.State)
	})

	t.Run("owed commands re-derived from the record", func(t *testing.T) {
		m := machine(t, wf(join.All(), 0, 0))
		rec, _ := start(t, m, Split)
		rec, _ = apply(t, m, rec, branch(rec, 1, true))
		fx, err := engine.Owed(m, rec, nil)
		require.NoError(t, err)
		require.Len(t, fx.Commands, 3)
	})
}

func TestValidateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		wf   *fsm.Workflow[St]
		msg  string
	}{
		{"no handlers", fsm.New[St]("w", A).Exit(Done), "no states registered"},
		{"no exit", fsm.New[St]("w", A).Register(A, noop{}), "no exit states"},
		{"bad initial", fsm.New[St]("w", Ghost).Register(A, noop{}).Exit(Done), `initial state "ghost"`},
		{"dangling join state", fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{noop{}}, fsm.JoinConfig[St]{JoinState: Ghost}).Exit(Done), `join state "ghost"`},
		{"partial timeout without timeout", fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{noop{}}, fsm.JoinConfig[St]{Strategy: join.PartialTimeout(), JoinState: Done}).Exit(Done), "requires a timeout"},
		{"percentage", fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{noop{}}, fsm.JoinConfig[St]{Strategy: join.Percentage(1.5), JoinState: Done}).Exit(Done), "outside (0,1]"},
		{"quorum above branches", fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{noop{}}, fsm.JoinConfig[St]{Strategy: join.Quorum(2), JoinState: Done}).Exit(Done), "needs more branches"},
		{"bulkhead", fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{noop{}}, fsm.JoinConfig[St]{JoinState: Done, Bulkhead: -1}).Exit(Done), "bulkhead"},
		{"bad name", fsm.New[St]("w x", A).Register(A, noop{}).Exit(Done), "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.wf.Validate()
			require.Error(t, err)
			require.True(t, errors.Is(err, fsm.ErrConfiguration), err.Error())
			require.Contains(t, err.Error(), tc.msg)
		})
	}
	require.NoError(t, fsm.New[St]("w", A).Register(A, noop{}).Exit(Done).Validate())
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	p := fsm.RetryMode{}.Policy()
	require.Equal(t, uint32(4), engine.MaxAttempts(p))
	tests := []struct {
		k    uint32
		u    float64
		want time.Duration
	}{
		{0, 0, 100 * time.Millisecond},
		{1, 0, 200 * time.Millisecond},
		{2, 0, 400 * time.Millisecond},
		{0, 1, 110 * time.Millisecond},
		{0, -1, 90 * time.Millisecond},
		{20, 0, 30 * time.Second},
		{20, 1, 33 * time.Second},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, engine.RetryDelay(p, tc.k, tc.u), "k=%d u=%v", tc.k, tc.u)
	}
	require.Equal(t, uint32(1), engine.MaxAttempts(fsm.RetryNone().Policy()))
	fixed := fsm.RetryFixed(2, 50*time.Millisecond).Policy()
	require.Equal(t, uint32(3), engine.MaxAttempts(fixed))
	require.Equal(t, 50*time.Millisecond, engine.RetryDelay(fixed, 1, 1))
	odd := fsm.RetryExponentialCustom(1, time.Millisecond, -3, time.Second, 7).Policy()
	require.Equal(t, 1.0, odd.Multiplier)
	require.Equal(t, 1.0, odd.Jitter)
}

func BenchmarkApply(b *testing.B) {
	wf := fsm.New[St]("chain", A).Register(A, noop{}).Register(B, noop{}).Exit(Done)
	d, _ := wf.Definition()
	m, _ := engine.Compile(d)
	rec, _, _ := engine.Start(m, &protocol.Trigger{V: 1, Workflow: "chain"}, "run1", t0)
	in := engine.Input{Result: &protocol.TaskResult{RunID: "run1", Step: 0, Branch: -1, Status: protocol.ResultOK, Next: "b"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := engine.Apply(m, rec, in, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// A run input larger than protocol.InlineInputMax stays in the run record:
// commands carry a flag instead of the bytes; a small input travels inline.
func TestLargeInputStaysInRecord(t *testing.T) {
	m := machine(t, fsm.New[St]("chain", "a").Register("a", noop{}).Exit("done"))
	for _, tc := range []struct {
		name     string
		size     int
		inRecord bool
	}{
		{"small input inline", 100, false},
		{"input at the limit inline", protocol.InlineInputMax, false},
		{"large input in the record", protocol.InlineInputMax + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := make([]byte, tc.size)
			rec, fx, err := engine.Start(m, &protocol.Trigger{V: 1, Workflow: "chain", Input: in}, "run1", t0)
			require.NoError(t, err)
			require.Len(t, rec.Input, tc.size, "the record keeps the input")
			require.Len(t, fx.Commands, 1)
			cmd := fx.Commands[0]
			require.Equal(t, tc.inRecord, cmd.InputInRecord)
			if tc.inRecord {
				require.Empty(t, cmd.Input)
				require.EqualValues(t, protocol.SchemaVersion2, cmd.V, "older workers must refuse it, not run without input")
			} else {
				require.EqualValues(t, protocol.SchemaVersion, cmd.V)
				require.Len(t, cmd.Input, tc.size)
			}
		})
	}
}
