package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100},               // no cycle yet: Go's default
		{2 << 20, 1500},        // 2 MiB live: the next cycle at the floor (32 MiB)
		{8 << 20, 300},         // 8 MiB: at the floor
		{Floor / 2, 100},       // half the floor: doubling reaches it
		{Floor/2 - 1<<20, 113}, // just below half: a little over doubling
		{Floor - 1, 100},       // above half
		{1 << 30, 100},         // large: Go's default
	} {
		require.Equal(t, tc.want, Percent(tc.live), "live %d", tc.live)
	}
}

func TestSetFollowsTheLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	require.True(t, Set())
	defer Stop()
	require.False(t, Set(), "armed once")
	// The hook runs on the finalizer goroutine after a cycle: cycles are
	// forced until it has run twice (bounded).
	n := adjusted.Load()
	deadline := time.Now().Add(10 * time.Second)
	for adjusted.Load() < n+2 {
		require.True(t, time.Now().Before(deadline), "the hook ran %d times after a cycle", adjusted.Load()-n)
		runtime.GC()
		runtime.Gosched()
	}
	got := debug.SetGCPercent(100)
	require.Greater(t, got, 100, "a test binary's live heap is far below the floor")
}

func TestSetLeavesAnOperatorsChoice(t *testing.T) {
	t.Setenv("GOGC", "200")
	require.False(t, Set())
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "1GiB")
	require.False(t, Set())
}
