package layout_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
)

// The message ids are de-duplication keys: a coordinator of this version
// re-publishing what one of an earlier version published must produce the
// same id, so their form is pinned here.
func TestMsgIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		run    string
		step   uint32
		branch int32
	}{
		{"01J9ZK3Q7M8X", 0, -1},
		{"run-1", 4294967295, 2147483647},
		{"a-run-id-longer-than-the-stack-buffer-a-run-id-longer-than-the-stack-buffer-a-run-id-longer", 7, 12},
	} {
		require.Equal(t, fmt.Sprintf("%s/%d/%d", tc.run, tc.step, tc.branch), layout.CommandMsgID(tc.run, tc.step, tc.branch))
		require.Equal(t, fmt.Sprintf("r:%s/%d/%d", tc.run, tc.step, tc.branch), layout.ResultMsgID(tc.run, tc.step, tc.branch))
		require.Equal(t, fmt.Sprintf("ev:%s:%d:%s", tc.run, tc.step, "completed"), layout.EventMsgID(tc.run, tc.step, "completed"))
	}
}

func BenchmarkMsgIDs(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = layout.CommandMsgID("01J9ZK3Q7M8XABCDEFGHJKMNPQ", 3, -1)
		_ = layout.ResultMsgID("01J9ZK3Q7M8XABCDEFGHJKMNPQ", 3, -1)
		_ = layout.EventMsgID("01J9ZK3Q7M8XABCDEFGHJKMNPQ", 3, "completed")
	}
}
