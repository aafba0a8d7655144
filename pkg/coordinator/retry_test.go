package coordinator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNakDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delivered uint64
		want      time.Duration
	}{
		{0, NakDelayMin},
		{1, 250 * time.Millisecond},
		{2, 500 * time.Millisecond},
		{3, time.Second},
		{4, 2 * time.Second},
		{7, 16 * time.Second},
		{8, NakDelayMax},
		{9, NakDelayMax},
		{1 << 40, NakDelayMax},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, nakDelay(tc.delivered), "delivery %d", tc.delivered)
	}
}

// TestMaxDeliveriesDefaultWait: the default bound outlasts a broker outage
// of several minutes.
func TestMaxDeliveriesDefaultWait(t *testing.T) {
	t.Parallel()
	var total time.Duration
	for n := uint64(1); n < MaxDeliveriesDefault; n++ {
		total += nakDelay(n)
	}
	require.Greater(t, total, 15*time.Minute)
	require.Less(t, total, 20*time.Minute)
}
