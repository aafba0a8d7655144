package protocol_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TestDecodeRunHead: the head of the run record fixture has the record's
// fields (so RunHead's tags follow RunRecord's), and bad input is refused.
func TestDecodeRunHead(t *testing.T) {
	t.Parallel()
	var rec *protocol.RunRecord
	for _, c := range wireCases() {
		if r, ok := c.msg.(*protocol.RunRecord); ok {
			rec = r
		}
	}
	require.NotNil(t, rec)
	data, err := wirecodec.Encode(rec)
	require.NoError(t, err)
	h, err := wirecodec.DecodeRunHead(data, 0)
	require.NoError(t, err)
	require.Equal(t, wirecodec.RunHead{V: rec.V, ID: rec.ID, Workflow: rec.Workflow, DefVersion: rec.DefVersion,
		Status: rec.Status, State: rec.State, Error: rec.Error, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, StartAt: rec.StartAt}, h)

	for name, bad := range map[string][]byte{
		"empty":       nil,
		"not msgpack": []byte("not msgpack"),
		"truncated":   data[:len(data)/2],
	} {
		_, err := wirecodec.DecodeRunHead(bad, 0)
		require.ErrorIs(t, err, protocol.ErrMalformed, name)
	}
	_, err = wirecodec.DecodeRunHead(data, 10)
	require.ErrorIs(t, err, protocol.ErrTooLarge)
	old := *rec
	old.V = protocol.SchemaVersion + 1
	data, err = wirecodec.Encode(&old)
	require.NoError(t, err)
	_, err = wirecodec.DecodeRunHead(data, 0)
	require.ErrorIs(t, err, protocol.ErrSchemaVersion)
}
