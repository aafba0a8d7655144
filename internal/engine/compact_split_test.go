package engine_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TestCompactStaticSplit runs a static split of more than
// fsm.CompactSplitMin like branches, which the definition stores compact:
// it compiles, every branch is dispatched with its own parameters, and the
// join completes the run.
func TestCompactStaticSplit(t *testing.T) {
	t.Parallel()
	n := fsm.CompactSplitMin + 1
	tasks := make([]fsm.Task, n)
	for i := range tasks {
		tasks[i] = noop{Name: fmt.Sprint(i)}
	}
	wf := fsm.New[St]("big", Split).RegisterSplit(Split, tasks, fsm.JoinConfig[St]{Strategy: join.All(), JoinState: Done}).Exit(Done)
	d, err := wf.Definition()
	require.NoError(t, err)
	require.EqualValues(t, protocol.SchemaVersion2, d.V)
	require.NotNil(t, d.States[0].Split.Common, "stored compact")
	require.Equal(t, n, d.States[0].Split.Len())
	data, err := wirecodec.Encode(d)
	require.NoError(t, err)
	var back protocol.Definition
	require.NoError(t, wirecodec.Decode(data, &back, 0))

	m := machine(t, wf)
	require.Equal(t, []string{"noop"}, m.Kinds())
	rec, fx := start(t, m, Split)
	require.Len(t, fx.Commands, n)
	for i, c := range fx.Commands {
		require.Equal(t, int32(i), c.Branch)
		require.Equal(t, "noop", c.Task.Kind)
		var p noop
		require.NoError(t, msgpack.Unmarshal(c.Task.Params, &p), "branch %d params", i)
		require.Equal(t, fmt.Sprint(i), p.Name)
	}
	for i := range n {
		rec, _ = apply(t, m, rec, branch(rec, int32(i), true))
	}
	require.Equal(t, protocol.RunCompleted, rec.Status)
	require.Equal(t, []string{"split", "done"}, rec.Path)

	// Up to CompactSplitMin branches a definition keeps the long form
	// every release reads.
	small, err := fsm.New[St]("small", Split).RegisterSplit(Split, tasks[:fsm.CompactSplitMin],
		fsm.JoinConfig[St]{Strategy: join.All(), JoinState: Done}).Exit(Done).Definition()
	require.NoError(t, err)
	require.EqualValues(t, protocol.SchemaVersion, small.V)
	require.Nil(t, small.States[0].Split.Common)
	require.Len(t, small.States[0].Split.Tasks, fsm.CompactSplitMin)
}
