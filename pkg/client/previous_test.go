package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// tally is the data that travels from state to state.
type tally struct {
	Sum   int      `msgpack:"sum"`
	Trail []string `msgpack:"trail"`
	Pad   []byte   `msgpack:"pad"`
}

// adder reads the previous state's output (the run input in the first
// state), adds Add, and hands the result on to Next.
type adder struct {
	Next S   `msgpack:"next"`
	Add  int `msgpack:"add"`
}

func (adder) Kind() string { return "adder" }
func (a adder) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var t tally
	err := tc.Previous(&t)
	if errors.Is(err, fsm.ErrNoPrevious) {
		err = tc.Input(&t)
	}
	if err != nil {
		return fsm.Result{}, err
	}
	t.Sum += a.Add
	t.Trail = append(t.Trail, tc.State)
	return fsm.NextWith(a.Next, t), nil
}

// Each state of a three-state workflow reads the previous state's output and
// adds to it; a large output (over protocol.InlineInputMax) stays in the run
// record and is read from there.
func TestDataFlowsFromStateToState(t *testing.T) {
	t.Parallel()
	b := setupB(t)
	wf := fsm.New[S]("adding", SA).
		Register(SA, adder{Next: SB, Add: 1}).
		Register(SB, adder{Next: SC, Add: 10}).
		Register(SC, adder{Next: SDone, Add: 100}).
		Exit(SDone)
	_, err := startGateWorker(t, b.nc, wf)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		pad  int
	}{
		{"small, carried in the command", 10},
		{"large, read from the run record", protocol.InlineInputMax + 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Made here, not before the subtests: a parallel subtest may
			// wait for a free slot longer than the deadline.
			ctx := awaitCtx(t)
			out, err := b.client.Run(ctx, "adding", &client.TriggerOpts{Input: tally{Sum: 1000, Pad: make([]byte, tc.pad)}})
			require.NoError(t, err)
			require.Equal(t, client.RunCompleted, out.Status)
			var got tally
			require.NoError(t, out.Output(&got))
			require.Equal(t, 1111, got.Sum)
			require.Equal(t, []string{"a", "b", "c"}, got.Trail)
			require.Len(t, got.Pad, tc.pad)
		})
	}
}
