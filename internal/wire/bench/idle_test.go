package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/bench"
)

// TestIdleReports runs the idle scenario in one process (what
// cmd/coordinator and cmd/worker run, on an embedded server) over a short
// window and checks it reports the window, the share of a core and the
// wakeups, and that no baseline was taken for it.
func TestIdleReports(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Scenarios: []string{"idle"}, IdleSettle: time.Millisecond, IdleFor: time.Second})
	require.NoError(t, err)
	require.Zero(t, rep.Baseline, "the idle scenario alone needs no baseline")
	require.Len(t, rep.Results, 1)
	r := rep.Results[0]
	require.Equal(t, "idle", r.Scenario)
	require.GreaterOrEqual(t, r.Figures["seconds"], 1.0)
	for _, k := range []string{"cpu_pct_of_core_total", "wakeups_per_s_total"} {
		v, ok := r.Figures[k]
		require.True(t, ok, "figure %s missing: %v", k, r.Figures)
		require.GreaterOrEqual(t, v, 0.0, k)
	}
}
