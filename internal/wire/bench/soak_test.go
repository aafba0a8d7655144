package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/bench"
)

// TestSoakPrints runs a short soak on an embedded server and checks the
// table it prints: a header, a row at the start, a row per interval with
// every column filled, and the summary.
func TestSoakPrints(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := bench.Soak(ctx, bench.Config{Rate: 100, SoakEvery: time.Second, Concurrency: 500}, 3*time.Second, &out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.GreaterOrEqual(t, len(lines), 6, out.String())
	require.Contains(t, lines[1], "soaking at 100 runs/s")
	require.Equal(t, []string{"elapsed", "runs/s", "behind", "server_mb", "stored_mb", "stored_msgs", "runs_kept"},
		strings.Fields(lines[2]))
	rows := lines[3 : len(lines)-1]
	for _, r := range rows {
		require.Len(t, strings.Fields(r), 7, r)
	}
	last := strings.Fields(rows[len(rows)-1])
	require.NotEqual(t, "0", last[6], "runs retained after the soak:\n%s", out.String())
	require.Contains(t, lines[len(lines)-1], "runs completed in 3s")
}
