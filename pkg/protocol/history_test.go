package protocol_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// The run history (RunRecord.History and Totals, TaskResult's attempt
// times, SplitProgress.TimedOut) was added without a schema version bump:
// the fields are optional and only describe the run, so a record or result
// written before them reads as one without history, and a build that
// predates them skips them (it would write such a record back without its
// history, losing steps but never misrunning). These tests pin both
// directions: testdata/compat holds the golden bytes from before history.
func TestHistoryCompatibility(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fresh func() protocol.Message
		// strip clears the history fields of the current fixture, giving
		// what the old bytes decode to.
		strip func(protocol.Message)
	}{
		{"run_record", func() protocol.Message { return new(protocol.RunRecord) }, func(m protocol.Message) {
			r := m.(*protocol.RunRecord)
			r.History, r.Totals, r.Split.TimedOut = nil, protocol.RunTotals{}, 0
		}},
		{"task_result", func() protocol.Message { return new(protocol.TaskResult) }, func(m protocol.Message) {
			r := m.(*protocol.TaskResult)
			r.AttemptStarted, r.AttemptDuration = 0, 0
			r.Start = nil // newer than history too
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			old, err := os.ReadFile(filepath.Join("testdata", "compat", tc.name+"_before_history.msgpack"))
			require.NoError(t, err)
			got := tc.fresh()
			require.NoError(t, wirecodec.Decode(old, got, 0), "bytes from before history must still decode")
			want := caseNamed(t, tc.name).msg
			tc.strip(want)
			require.Equal(t, want, got)

			// A build from before history skips the keys it does not know
			// (the msgpack decoder's default): the current bytes decode
			// into a struct without the history fields.
			current, err := os.ReadFile(filepath.Join("testdata", "golden", tc.name+".msgpack"))
			require.NoError(t, err)
			var older struct {
				V     uint16 `msgpack:"v"`
				RunID string `msgpack:"run_id"`
				ID    string `msgpack:"id"`
			}
			require.NoError(t, msgpack.Unmarshal(current, &older))
			require.EqualValues(t, protocol.SchemaVersion, older.V)
		})
	}
}
