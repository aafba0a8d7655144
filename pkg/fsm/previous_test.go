package fsm_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestTaskContextPrevious(t *testing.T) {
	t.Parallel()
	enc := func(v any) []byte {
		b, err := wirecodec.EncodeValue(v)
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name    string
		prev    []byte
		loader  func(ctx context.Context) ([]byte, error)
		wantN   int
		wantErr error
		errText string
	}{
		{name: "inline", prev: enc(map[string]int{"n": 3}), wantN: 3},
		{name: "none", wantErr: fsm.ErrNoPrevious, errText: `state "s" (step 4)`},
		{name: "does not fit", prev: enc("text"), wantErr: protocol.ErrMalformed, errText: "map[string]int"},
		{name: "crafted", prev: []byte{0xdf, 0x80, 0, 0, 0, 1}, wantErr: protocol.ErrMalformed, errText: "declares"},
		{name: "from the record", loader: func(context.Context) ([]byte, error) { return enc(map[string]int{"n": 8}), nil }, wantN: 8},
		{name: "record gone", loader: func(context.Context) ([]byte, error) {
			return nil, fsm.Permanent(fsm.NewError(protocol.CategoryStore, "run record gone"))
		}, wantErr: fsm.ErrPermanent, errText: "run record gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tcx := fsmbridge.NewTaskContext(fsmbridge.TaskContextParams{Cmd: &protocol.TaskCommand{RunID: "r", Workflow: "w", State: "s", Step: 4, Branch: -1,
				Previous: tc.prev}, Attempt: 1, MaxAttempts: 1, LoadPrevious: tc.loader})
			var v map[string]int
			err := tcx.Previous(&v)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.ErrorIs(t, err, fsm.ErrPermanent, "not retried")
				require.ErrorContains(t, err, tc.errText)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantN, v["n"])
		})
	}
}
