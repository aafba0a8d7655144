package engine_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

func okWith(rec *protocol.RunRecord, next St, out []byte) engine.Input {
	in := ok(rec, next)
	in.Result.Output = out
	return in
}

// The output a task hands on with NextWith reaches the next state's command
// (Previous), is kept in the record, and is never an older state's.
func TestApplyCarriesPrevious(t *testing.T) {
	t.Parallel()
	big := make([]byte, protocol.InlineInputMax+1)
	chain := fsm.New[St]("chain", A).Register(A, noop{}).Register(B, noop{}).Register(C, noop{}).Exit(Done)
	for _, tc := range []struct {
		name     string
		build    func(rec *protocol.RunRecord, i int) engine.Input
		n        int
		wantPrev []byte
		inRecord bool
		wantOut  []byte
	}{
		{name: "a hands 1 to b", n: 1, build: func(rec *protocol.RunRecord, _ int) engine.Input { return okWith(rec, B, []byte{1}) },
			wantPrev: []byte{1}, wantOut: []byte{1}},
		{name: "b reads a's, c reads b's", n: 2, build: func(rec *protocol.RunRecord, i int) engine.Input {
			return okWith(rec, []St{B, C}[i], []byte{byte(i + 1)})
		}, wantPrev: []byte{2}, wantOut: []byte{2}},
		{name: "a state that hands nothing on clears it", n: 2, build: func(rec *protocol.RunRecord, i int) engine.Input {
			if i == 0 {
				return okWith(rec, B, []byte{1})
			}
			return ok(rec, C)
		}},
		{name: "a large output stays in the record", n: 1, build: func(rec *protocol.RunRecord, _ int) engine.Input { return okWith(rec, B, big) },
			inRecord: true, wantOut: big},
		{name: "at the limit it travels inline", n: 1, build: func(rec *protocol.RunRecord, _ int) engine.Input {
			return okWith(rec, B, big[:protocol.InlineInputMax])
		}, wantPrev: big[:protocol.InlineInputMax], wantOut: big[:protocol.InlineInputMax]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := machine(t, chain)
			rec, fx := start(t, m, A)
			require.Empty(t, fx.Commands[0].Previous, "the first state has no previous output")
			for i := range tc.n {
				rec, fx = apply(t, m, rec, tc.build(rec, i))
			}
			require.Len(t, fx.Commands, 1)
			cmd := fx.Commands[0]
			require.Equal(t, tc.wantPrev, cmd.Previous)
			require.Equal(t, tc.inRecord, cmd.PreviousInRecord)
			require.EqualValues(t, protocol.SchemaVersion, cmd.V)
			require.Equal(t, tc.wantOut, rec.Output)
			// The crash rule's re-derivation owes the same command.
			owed, err := engine.Owed(m, rec, nil)
			require.NoError(t, err)
			require.Equal(t, fx.Commands, owed.Commands)
		})
	}

	t.Run("the exit's output is the run's output", func(t *testing.T) {
		t.Parallel()
		m := machine(t, chain)
		rec, _ := start(t, m, A)
		rec, _ = apply(t, m, rec, okWith(rec, B, []byte{1}))
		rec, _ = apply(t, m, rec, okWith(rec, Done, []byte{9}))
		require.Equal(t, protocol.RunCompleted, rec.Status)
		require.Equal(t, []byte{9}, rec.Output)
	})

	t.Run("split branches read the output before the split; the join state reads branches", func(t *testing.T) {
		t.Parallel()
		wf := fsm.New[St]("split", A).Register(A, noop{}).
			RegisterSplit(Split, []fsm.Task{noop{Name: "x"}, noop{Name: "y"}}, fsm.JoinConfig[St]{Strategy: join.All(), JoinState: C}).
			Register(C, noop{}).Exit(Done)
		m := machine(t, wf)
		rec, _ := start(t, m, A)
		rec, fx := apply(t, m, rec, okWith(rec, Split, []byte{5}))
		require.Len(t, fx.Commands, 2)
		for _, c := range fx.Commands {
			require.Equal(t, []byte{5}, c.Previous)
		}
		rec, _ = apply(t, m, rec, branch(rec, 0, true))
		rec, fx = apply(t, m, rec, branch(rec, 1, true))
		require.Equal(t, "c", rec.State)
		require.Len(t, fx.Commands, 1)
		require.Empty(t, fx.Commands[0].Previous)
		require.NotZero(t, fx.Commands[0].JoinBranches)
	})
}
