package coordinator

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/kvcas"
)

func TestPubAckSeq(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		ack      string
		seq      uint64
		conflict bool
		err      bool
	}{
		{name: "success", ack: `{"stream":"KV_cano_runs","seq":42}`, seq: 42},
		{name: "domain and duplicate", ack: `{"stream":"KV_cano_runs","domain":"hub","seq":18446744073709551,"duplicate":true}`, seq: 18446744073709551},
		{name: "spaces are read by the slow path", ack: `{"stream": "KV_cano_runs", "seq": 7}`, seq: 7},
		{name: "wrong last sequence", ack: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"KV_cano_runs","seq":0}`, conflict: true, err: true},
		{name: "replicated wrong last sequence", ack: `{"error":{"code":400,"err_code":10164,"description":"wrong last sequence"}}`, conflict: true, err: true},
		{name: "other error", ack: `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`, err: true},
		{name: "no sequence", ack: `{"stream":"KV_cano_runs"}`, err: true},
		{name: "not JSON", ack: `+OK`, err: true},
		{name: "empty", ack: ``, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, err := pubAckSeq([]byte(tc.ack))
			if !tc.err {
				require.NoError(t, err)
				require.Equal(t, tc.seq, seq)
				return
			}
			require.Error(t, err)
			require.Equal(t, tc.conflict, kvcas.Conflict(err), "conflict")
			if tc.conflict {
				require.ErrorIs(t, err, jetstream.ErrKeyRevisionMismatch)
			}
		})
	}
}
