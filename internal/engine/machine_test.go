package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

type kinds map[string]bool

func (k kinds) Has(kind string) bool { return k[kind] }

func (kinds) CheckParams(string, []byte) error { return nil }

func TestKinds(t *testing.T) {
	t.Parallel()
	wf := fsm.New[St]("kinds", A).Register(A, noop{}).
		RegisterSplit(Split, []fsm.Task{noop{"0"}, splitOther{}}, fsm.JoinConfig[St]{Strategy: join.All(), JoinState: B}).
		Register(B, noop{}).Exit(Done)
	m := machine(t, wf)
	require.Equal(t, []string{"noop", "split_other"}, m.Kinds(), "each kind once, in definition order, split tasks included")
	require.NoError(t, m.CheckKinds(kinds{"noop": true, "split_other": true}))
	err := m.CheckKinds(kinds{"noop": true})
	require.ErrorIs(t, err, engine.ErrConfiguration)
	require.ErrorContains(t, err, `workflow "kinds" uses task kind "split_other", which this worker has not registered: add the task type to the worker's registry, fsm.Register[T](reg) with T the type whose Kind() returns "split_other"`)
}

type splitOther struct{}

func (splitOther) Kind() string { return "split_other" }
func (splitOther) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}

func TestOutputCodec(t *testing.T) {
	t.Parallel()
	data, err := engine.EncodeOutput(nil)
	require.NoError(t, err)
	require.Nil(t, data, "no output stays nil")

	data, err = engine.EncodeOutput(map[string]int{"b": 2, "a": 1})
	require.NoError(t, err)
	again, err := engine.EncodeOutput(map[string]int{"a": 1, "b": 2})
	require.NoError(t, err)
	require.Equal(t, data, again, "maps encode canonically")
	var back map[string]int
	require.NoError(t, engine.DecodeOutput(data, &back))
	require.Equal(t, map[string]int{"a": 1, "b": 2}, back)

	_, err = engine.EncodeOutput(make(chan int))
	require.Error(t, err)

	require.EqualError(t, engine.DecodeOutput(nil, &back), "fsm: no output")
	var s string
	err = engine.DecodeOutput(data, &s)
	require.ErrorContains(t, err, "fsm: decode output")
}

func TestContentVersion(t *testing.T) {
	t.Parallel()
	d, err := fsm.New[St]("cv", A).Register(A, noop{}).Exit(Done).Definition()
	require.NoError(t, err)
	v1, err := engine.ContentVersion(d)
	require.NoError(t, err)
	require.Len(t, v1, engine.ContentVersionLen)
	d2 := *d
	d2.Version = "explicit"
	v2, err := engine.ContentVersion(&d2)
	require.NoError(t, err)
	require.Equal(t, v1, v2, "the version itself is left out")
	d2.TotalTimeout = int64(time.Minute)
	v3, err := engine.ContentVersion(&d2)
	require.NoError(t, err)
	require.NotEqual(t, v1, v3, "any change gives another version")
}

// A task's dynamic split that cannot run fails the run with a
// configuration error naming the reason; a valid one stores its spec.
func TestDynamicSplitRefused(t *testing.T) {
	t.Parallel()
	m := machine(t, fsm.New[St]("dyn", A).Register(A, noop{}).Register(B, noop{}).Exit(Done))
	tasks := func(n int) []protocol.TaskSpec { return make([]protocol.TaskSpec, n) }
	for _, tc := range []struct {
		name string
		spec protocol.SplitSpec
		want string // "" when the split starts
	}{
		{"too many branches", protocol.SplitSpec{Tasks: tasks(engine.MaxDynamicBranchesDefault + 1),
			Join: protocol.JoinSpec{Strategy: protocol.JoinAll, JoinState: "b"}}, "exceeds the maximum"},
		{"unknown join state", protocol.SplitSpec{Tasks: tasks(2),
			Join: protocol.JoinSpec{Strategy: protocol.JoinAll, JoinState: "nowhere"}}, `join state "nowhere" is neither registered`},
		{"invalid join rule", protocol.SplitSpec{Tasks: tasks(2),
			Join: protocol.JoinSpec{Strategy: protocol.JoinPercentage, P: 2, JoinState: "b"}}, "dynamic split: "},
		{"valid", protocol.SplitSpec{Tasks: tasks(2),
			Join: protocol.JoinSpec{Strategy: protocol.JoinAll, JoinState: "b"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, _ := start(t, m, A)
			in := ok(rec, "")
			in.Result.Split = &tc.spec
			next, fx := apply(t, m, rec, in)
			if tc.want == "" {
				require.Equal(t, protocol.RunRunning, next.Status)
				require.Same(t, &tc.spec, fx.PutSplitSpec)
				require.Len(t, fx.Commands, 2)
				return
			}
			require.Equal(t, protocol.RunFailed, next.Status)
			require.Equal(t, protocol.CategoryConfiguration, next.Error.Category)
			require.Contains(t, next.Error.Message, tc.want)
			require.Nil(t, fx.PutSplitSpec)
		})
	}
}

// Owed of a split re-derives the commands of branches dispatched and not
// done, and the join timer; a dynamic split needs its spec.
func TestOwedSplit(t *testing.T) {
	t.Parallel()
	branches := []fsm.Task{noop{"0"}, noop{"1"}, noop{"2"}}
	m := machine(t, fsm.New[St]("owed", Split).RegisterSplit(Split, branches, fsm.JoinConfig[St]{
		Strategy: join.All(), JoinState: B, Bulkhead: 2, Timeout: time.Minute}).Register(B, noop{}).Register(A, noop{}).Exit(Done))
	rec, _ := start(t, m, Split)
	rec, _ = apply(t, m, rec, branch(rec, 0, true)) // dispatches branch 2
	fx, err := engine.Owed(m, rec, nil)
	require.NoError(t, err)
	var owed []int32
	for _, c := range fx.Commands {
		owed = append(owed, c.Branch)
	}
	require.Equal(t, []int32{1, 2}, owed, "dispatched and not done")
	require.Len(t, fx.Timers, 1)
	require.Equal(t, protocol.TimerJoin, fx.Timers[0].Kind)

	// A dynamic split.
	rec, _ = start(t, m, A)
	in := ok(rec, "")
	in.Result.Split = &protocol.SplitSpec{Tasks: []protocol.TaskSpec{{Kind: "noop"}, {Kind: "noop"}},
		Join: protocol.JoinSpec{Strategy: protocol.JoinAll, JoinState: "b"}}
	rec, _ = apply(t, m, rec, in)
	_, err = engine.Owed(m, rec, nil)
	require.ErrorIs(t, err, engine.ErrNeedSplitSpec)
	fx, err = engine.Owed(m, rec, in.Result.Split)
	require.NoError(t, err)
	require.Len(t, fx.Commands, 2)

	// A branch result without the spec is refused, not guessed.
	_, _, err = engine.Apply(m, rec, branch(rec, 0, true), t0)
	require.ErrorIs(t, err, engine.ErrNeedSplitSpec)
	require.True(t, errors.Is(err, engine.ErrWorkflow))
}
