package fsm_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

type point struct{ X, Y, Z, W int64 }

// A trigger input crafted to claim a huge array (array32 header claiming
// 2^31 elements, three bytes after it) is refused with a clear, permanent
// error before the decoder allocates anything.
func TestInputRefusesHugeClaim(t *testing.T) {
	crafted := []byte{0xdd, 0x80, 0, 0, 0, 1, 2, 3}
	tc := newTaskContext(&protocol.TaskCommand{RunID: "r1", Workflow: "w", State: "s", Branch: -1,
		Input: crafted}, 1, 1, nil, nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var v []point
	err := tc.Input(&v)
	runtime.ReadMemStats(&after)
	require.Error(t, err)
	require.ErrorIs(t, err, fsm.ErrPermanent, "a bad input is not retried")
	require.ErrorIs(t, err, protocol.ErrMalformed)
	require.ErrorContains(t, err, "declares 2147483648 values")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "bytes allocated decoding 8 bytes")
}

// Every decode of outside bytes goes through the guard: task parameters,
// branch outputs and run outputs.
func TestDecodesAreGuarded(t *testing.T) {
	t.Parallel()
	crafted := []byte{0xdf, 0x80, 0, 0, 0, 1, 2, 3} // map32 claiming 2^31 entries
	var reg fsm.Registry
	fsm.Register[paramTask](&reg)
	_, err := fsmbridge.BuildTask(&reg, &protocol.TaskSpec{Kind: "param", Params: crafted})
	require.ErrorIs(t, err, fsm.ErrConfiguration)
	require.ErrorContains(t, err, "declares")

	_, err = fsm.BranchOutput[map[string]int](fsm.BranchOutcome{Index: 2, Output: crafted})
	require.ErrorIs(t, err, protocol.ErrMalformed)
	require.ErrorContains(t, err, "branch 2 output")

	var m map[string]int
	require.ErrorIs(t, engine.DecodeOutput(crafted, &m), protocol.ErrMalformed)
	require.Error(t, engine.DecodeOutput(nil, &m))

	// And good bytes still decode.
	good, err := engine.EncodeOutput(map[string]int{"b": 2, "a": 1})
	require.NoError(t, err)
	require.NoError(t, engine.DecodeOutput(good, &m))
	require.Equal(t, map[string]int{"a": 1, "b": 2}, m)
	got, err := fsm.BranchOutput[map[string]int](fsm.BranchOutcome{Output: good})
	require.NoError(t, err)
	require.Equal(t, m, got)
	task, err := fsmbridge.BuildTask(&reg, &protocol.TaskSpec{Kind: "param", Params: mustEncode(t, paramTask{N: 7})})
	require.NoError(t, err)
	require.Equal(t, paramTask{N: 7}, task)
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wirecodec.EncodeValue(v)
	require.NoError(t, err)
	return b
}

type paramTask struct {
	N int `msgpack:"n"`
}

func (paramTask) Kind() string { return "param" }
func (paramTask) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next("done"), nil
}
