package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSplitBulkhead(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 2, out.String())
	require.Equal(t, "completed via call → collect → done: sum of squares 1..8 = 204", lines[0])
	require.True(t, strings.HasPrefix(lines[1], "8 branches, worker concurrency 8, bulkhead 2: at most "), lines[1])
	require.LessOrEqual(t, peak.Load(), int32(bulkhead), "the bulkhead bounds the branches in flight")
	require.Positive(t, peak.Load())
}
