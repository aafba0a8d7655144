package engine_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

func failed(rec *protocol.RunRecord, cat protocol.ErrorCategory, msg string, attempts uint32) engine.Input {
	return engine.Input{Result: &protocol.TaskResult{V: 1, RunID: rec.ID, Step: rec.Step, Branch: -1, Status: protocol.ResultFailed,
		Attempts: attempts, Error: &protocol.ErrorInfo{Category: cat, Message: msg}}}
}

// handedFailure decodes the failure a routed state hands on.
func handedFailure(t *testing.T, rec *protocol.RunRecord) *protocol.ErrorInfo {
	t.Helper()
	var out protocol.FailureOutput
	require.NoError(t, wirecodec.DecodeValue(rec.Output, &out))
	require.NotNil(t, out.Failure)
	return out.Failure
}

// TestOnFailure: a state whose failures are routed (fsm.Workflow.OnFailure)
// moves the run to the compensation state with the failure, instead of
// failing it; other states, a cancel and the total timeout still end it.
func TestOnFailure(t *testing.T) {
	t.Parallel()
	saga := fsm.New[St]("saga", A).Register(A, noop{}).Register(B, noop{}).OnFailure(B, C).Register(C, noop{}).Exit(Done, Rejected)

	t.Run("a task's final failure moves the run to the compensation state", func(t *testing.T) {
		m := machine(t, saga)
		require.EqualValues(t, protocol.SchemaVersion3, m.Definition().V, "older builds refuse the definition")
		rec, _ := start(t, m, A)
		rec, _ = apply(t, m, rec, ok(rec, B))
		rec, fx := apply(t, m, rec, failed(rec, protocol.CategoryRetryExhausted, "retry_exhausted: 3 attempts: gateway down", 3))
		require.Equal(t, protocol.RunRunning, rec.Status)
		require.False(t, fx.Ended)
		require.Equal(t, "c", rec.State)
		require.Equal(t, []string{"a", "b", "c"}, rec.Path)
		require.Len(t, fx.Commands, 1)
		require.Equal(t, "c", fx.Commands[0].State)
		require.Len(t, fx.Events, 1, "the compensation state's event, with the failure")
		require.Equal(t, protocol.EventState, fx.Events[0].Type)
		require.Equal(t, "c", fx.Events[0].State)
		require.Equal(t, `after state "b" failed`, fx.Events[0].Detail)
		require.Equal(t, protocol.CategoryRetryExhausted, fx.Events[0].Error.Category)
		f := handedFailure(t, rec)
		require.Equal(t, protocol.CategoryRetryExhausted, f.Category)
		require.Equal(t, "b", f.State)
		require.EqualValues(t, 3, f.Attempts)
		require.Equal(t, []string{"a", "b"}, f.Path)
		// The failed step keeps its error in the history.
		h := rec.History[len(rec.History)-2]
		require.Equal(t, "b", h.State)
		require.Equal(t, protocol.StepFailed, h.Outcome)
		require.NotNil(t, h.Error)
		require.Equal(t, protocol.CategoryRetryExhausted, h.Error.Category)
		require.EqualValues(t, 1, rec.Totals.FailedTasks)

		rec, fx = apply(t, m, rec, ok(rec, Rejected))
		require.Equal(t, protocol.RunCompleted, rec.Status)
		require.True(t, fx.Ended)
		require.Equal(t, []string{"a", "b", "c", "rejected"}, rec.Path)
	})

	t.Run("every category of a task's failure is routed", func(t *testing.T) {
		m := machine(t, saga)
		for _, cat := range []protocol.ErrorCategory{protocol.CategoryTaskExecution, protocol.CategoryPermanent,
			protocol.CategoryTimeout, protocol.CategoryCircuitOpen, protocol.CategoryRetryExhausted} {
			rec, _ := start(t, m, B)
			rec, _ = apply(t, m, rec, failed(rec, cat, string(cat)+": x", 1))
			require.Equal(t, "c", rec.State, "category %s", cat)
			require.Equal(t, cat, handedFailure(t, rec).Category)
			err := fsmbridge.FromErrorInfo(handedFailure(t, rec))
			var se *fsm.StateError
			require.ErrorAs(t, err, &se)
			require.Equal(t, "b", se.State)
		}
	})

	t.Run("a state without OnFailure still fails the run", func(t *testing.T) {
		m := machine(t, saga)
		rec, _ := start(t, m, A)
		rec, fx := apply(t, m, rec, failed(rec, protocol.CategoryPermanent, "permanent: no", 1))
		require.Equal(t, protocol.RunFailed, rec.Status)
		require.True(t, fx.Ended)
		require.Equal(t, "a", rec.State)
	})

	t.Run("the compensation state's own failure fails the run", func(t *testing.T) {
		m := machine(t, saga)
		rec, _ := start(t, m, B)
		rec, _ = apply(t, m, rec, failed(rec, protocol.CategoryPermanent, "permanent: charge refused", 1))
		rec, fx := apply(t, m, rec, failed(rec, protocol.CategoryPermanent, "permanent: release refused", 1))
		require.Equal(t, protocol.RunFailed, rec.Status)
		require.True(t, fx.Ended)
		require.Equal(t, "c", rec.State)
		require.Equal(t, []string{"b", "c"}, rec.Path)
	})

	t.Run("a cancel is not routed", func(t *testing.T) {
		m := machine(t, saga)
		rec, _ := start(t, m, B)
		rec, fx := apply(t, m, rec, engine.Input{Cancel: &protocol.CancelRequest{V: 1, RunID: rec.ID}})
		require.Equal(t, protocol.RunCancelled, rec.Status)
		require.True(t, fx.Ended)
	})

	t.Run("a failed join is routed", func(t *testing.T) {
		wf := fsm.New[St]("split_saga", Split).
			RegisterSplit(Split, []fsm.Task{noop{Name: "1"}, noop{Name: "2"}}, fsm.JoinConfig[St]{Strategy: join.All(), JoinState: Done}).
			OnFailure(Split, C).Register(C, noop{}).Exit(Done, Rejected)
		m := machine(t, wf)
		rec, _ := start(t, m, Split)
		rec, _ = apply(t, m, rec, branch(rec, 0, true))
		rec, fx := apply(t, m, rec, branch(rec, 1, false))
		require.Equal(t, protocol.RunRunning, rec.Status)
		require.Equal(t, "c", rec.State)
		require.Nil(t, rec.Split)
		require.Len(t, fx.Commands, 1)
		f := handedFailure(t, rec)
		require.Equal(t, protocol.CategoryWorkflow, f.Category)
		require.Equal(t, "split", f.State)
		h := rec.History[len(rec.History)-2]
		require.Equal(t, protocol.StepFailed, h.Outcome)
		require.NotNil(t, h.Split, "the failed split keeps its counts")
	})

	t.Run("routed to an exit state, the run completes with the failure as its output", func(t *testing.T) {
		wf := fsm.New[St]("to_exit", A).Register(A, noop{}).OnFailure(A, Rejected).Exit(Done, Rejected)
		m := machine(t, wf)
		rec, _ := start(t, m, A)
		rec, fx := apply(t, m, rec, failed(rec, protocol.CategoryPermanent, "permanent: no", 1))
		require.Equal(t, protocol.RunCompleted, rec.Status)
		require.True(t, fx.Ended)
		require.Equal(t, "rejected", rec.State)
		require.Equal(t, protocol.CategoryPermanent, handedFailure(t, rec).Category)
	})
}

// TestOnFailureCompile: the definition rules for routed failures.
func TestOnFailureCompile(t *testing.T) {
	t.Parallel()
	def := func(onFailure string, v uint16) *protocol.Definition {
		task := &protocol.TaskSpec{Kind: "noop", Retry: protocol.RetryPolicy{Mode: protocol.RetryNone}}
		return &protocol.Definition{V: v, Name: "wf", Version: "v1", Initial: "a", Queue: "default",
			States: []protocol.StateDef{{Name: "a", Kind: protocol.StateSingle, Task: task, OnFailure: onFailure}},
			Exits:  []string{"done"}}
	}
	_, err := engine.Compile(def("done", protocol.SchemaVersion3))
	require.NoError(t, err)
	for _, c := range []struct {
		name, to string
		v        uint16
		want     string
	}{
		{"to itself", "a", protocol.SchemaVersion3, `state "a": its failures route to itself`},
		{"to an unknown state", "ghost", protocol.SchemaVersion3, `state "a": on failure, state "ghost" is neither registered nor an exit state`},
		{"in a version 1 definition", "done", protocol.SchemaVersion, "must have schema version 3"},
	} {
		_, err := engine.Compile(def(c.to, c.v))
		require.ErrorIs(t, err, engine.ErrConfiguration, c.name)
		require.ErrorContains(t, err, c.want, c.name)
	}
}
