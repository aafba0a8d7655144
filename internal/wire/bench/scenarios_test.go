package bench_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/bench"
)

// TestRoundsReportMedianAndSpread runs the one-task scenario in three
// rounds, each after a baseline of its own, and checks the result carries
// a baseline, the spread of the per-round ratios (ordered) and the longest
// gap, and prints them.
func TestRoundsReportMedianAndSpread(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Scenarios: []string{"onetask"}, Runs: 200, Concurrency: 50, Rounds: 3, Splits: []int{10}})
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	r := rep.Results[0]
	f := r.Figures
	require.Equal(t, 3.0, f["rounds"])
	require.Equal(t, 200.0, f["runs"], "a median of equal figures is that figure")
	require.Positive(t, r.Baseline)
	require.Positive(t, f["ratio_min"])
	require.LessOrEqual(t, f["ratio_min"], f["ratio_median"])
	require.LessOrEqual(t, f["ratio_median"], f["ratio_max"])
	require.Positive(t, f["max_gap_ms"], "the longest wait between two completions, over the rounds")

	var out bytes.Buffer
	require.NoError(t, bench.Print(&out, rep, false))
	require.Contains(t, out.String(), "ratio_median")
}

// TestFloorRuns runs the floor scenario (the one-task protocol without the
// engine) and checks every run completed and the figures are reported.
func TestFloorRuns(t *testing.T) {
	t.Parallel()
	for _, deferStart := range []time.Duration{0, 500 * time.Millisecond} {
		t.Run("defer-start "+deferStart.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rep, err := bench.Run(ctx, bench.Config{Scenarios: []string{"floor"}, Runs: 300, Concurrency: 50,
				Splits: []int{10}, DeferStart: deferStart})
			require.NoError(t, err)
			require.Len(t, rep.Results, 1)
			f := rep.Results[0].Figures
			require.Equal(t, 300.0, f["runs"])
			require.Positive(t, f["runs_per_s"])
			require.Positive(t, f["cpu_us_per_run"])
			require.Positive(t, f["max_gap_ms"], "the longest wait between two completions")
		})
	}
}

// TestLatencyBesideTheFloor runs the latency scenario and checks it reports
// the engine's latencies, the raw hop, and the floor's protocol run one at
// a time beside them (its p50 and p99, in order).
func TestLatencyBesideTheFloor(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Scenarios: []string{"latency"}, Runs: 200, Concurrency: 50, LatencyRuns: 40, Splits: []int{10}})
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	f := rep.Results[0].Figures
	for _, k := range []string{"p50_ms", "p99_ms", "raw_hop_p50_ms", "floor_p50_ms", "floor_p99_ms"} {
		require.Positive(t, f[k], k)
	}
	require.LessOrEqual(t, f["floor_p50_ms"], f["floor_p99_ms"])
}

// TestTimedRuns runs the timed scenario (one-task runs with a total
// timeout) and checks every run completed and the moot timers it left are
// reported: no more at the end than runs, and no more once settled than at
// the end.
func TestTimedRuns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Scenarios: []string{"timed"}, Runs: 300, Concurrency: 50, Splits: []int{10}})
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	f := rep.Results[0].Figures
	require.Equal(t, 300.0, f["runs"])
	require.Positive(t, f["runs_per_s"])
	require.Contains(t, f, "timers_left")
	require.Contains(t, f, "drain_ms")
	require.LessOrEqual(t, f["timers_left_at_end"], 300.0)
	require.LessOrEqual(t, f["timers_left"], f["timers_left_at_end"])
	require.GreaterOrEqual(t, f["timers_left"], 0.0)
}

// TestBacklogRuns runs the backlog scenario and checks that no run was
// worked before its worker started, so only the working was timed, and that
// every run then completed.
func TestBacklogRuns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Scenarios: []string{"backlog"}, Runs: 300, Concurrency: 50, Splits: []int{10}})
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	f := rep.Results[0].Figures
	require.Equal(t, 300.0, f["runs"])
	require.Zero(t, f["completed_before_start"], "no worker hosted the task while the runs were triggered")
	require.Positive(t, f["runs_per_s"])
	require.Positive(t, f["cpu_us_per_run"])
}
