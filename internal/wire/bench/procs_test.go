package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/bench"
)

// TestMain lets this test binary stand in for canobench as a -procs child
// (bench starts os.Executable() with bench.ChildArg).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == bench.ChildArg {
		os.Exit(bench.ChildMain(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestProcsReportsPerProcess runs the one-task scenario with the worker and
// the coordinator as child processes and checks each reports its CPU and
// its heap allocations per run.
func TestProcsReportsPerProcess(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Scenarios: []string{"onetask"}, Runs: 300, Concurrency: 50,
		Processes: true, Splits: []int{10}})
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	f := rep.Results[0].Figures
	require.Equal(t, 300.0, f["runs"])
	for _, role := range []string{"worker", "coordinator"} {
		_, ok := f["cpu_us_per_run_"+role]
		require.True(t, ok, "no CPU figure for the %s: %v", role, f)
		// Every run costs each process some allocations (decoding what
		// it receives at least), and nowhere near thousands.
		a := f["allocs_per_run_"+role]
		require.Greater(t, a, 1.0, "allocations per run of the %s: %v", role, f)
		require.Less(t, a, 5000.0, "allocations per run of the %s", role)
	}
}
