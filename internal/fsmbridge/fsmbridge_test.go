package fsmbridge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/fsmbridge/hooks"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

type step struct {
	N int `msgpack:"n"`
}

func (step) Kind() string { return "bridge_step" }
func (s step) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith("next", s.N), nil
}

// Importing pkg/fsm sets every hook, and the wrappers hand back fsm's own
// types.
func TestHooksAreSetAndTyped(t *testing.T) {
	t.Parallel()
	require.NotNil(t, hooks.NewTaskContext)
	require.NotNil(t, hooks.BuildTask)
	require.NotNil(t, hooks.SplitSpec)
	require.NotNil(t, hooks.ErrorInfo)
	require.NotNil(t, hooks.FromErrorInfo)

	var reg fsm.Registry
	fsm.Register[step](&reg)
	params, err := wirecodec.EncodeValue(step{N: 4})
	require.NoError(t, err)
	task, err := fsmbridge.BuildTask(&reg, &protocol.TaskSpec{Kind: "bridge_step", Params: params})
	require.NoError(t, err)
	_, err = fsmbridge.BuildTask(&reg, &protocol.TaskSpec{Kind: "nope"})
	require.ErrorIs(t, err, fsm.ErrUnknownKind)

	loaded := false
	tc := fsmbridge.NewTaskContext(fsmbridge.TaskContextParams{
		Cmd: &protocol.TaskCommand{RunID: "r", State: "s", Branch: -1}, Attempt: 2, MaxAttempts: 3,
		LoadInput: func(context.Context) ([]byte, protocol.InputFormat, error) {
			loaded = true
			return []byte(`{"a":1}`), protocol.InputJSON, nil
		},
		Branches: func(context.Context) ([]fsm.BranchOutcome, error) { return []fsm.BranchOutcome{{Index: 0}}, nil },
	})
	require.Equal(t, "r", tc.RunID)
	require.Equal(t, 2, tc.Attempt)
	var in map[string]int
	require.NoError(t, tc.Input(&in))
	require.True(t, loaded)
	require.Equal(t, map[string]int{"a": 1}, in)
	br, err := tc.Branches(context.Background())
	require.NoError(t, err)
	require.Len(t, br, 1)

	res, err := task.Run(context.Background(), tc)
	require.NoError(t, err)
	spec, err := fsmbridge.SplitSpec(res)
	require.NoError(t, err)
	require.Nil(t, spec, "not a split")
	spec, err = fsmbridge.SplitSpec(fsm.SplitInto(fsm.JoinConfig[string]{Strategy: join.All(), JoinState: "j"}, step{N: 1}))
	require.NoError(t, err)
	require.Len(t, spec.Tasks, 1)

	info := fsmbridge.ErrorInfo(fsm.Permanent(errors.New("boom")))
	require.Equal(t, protocol.CategoryPermanent, info.Category)
	require.ErrorIs(t, fsmbridge.FromErrorInfo(info), fsm.ErrPermanent)
}
