package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSchedulerBackoff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `backoff after failure 1, 2: 100ms, 200ms; trips after 3
run 1: failed: in state "sync" (attempt 1, path sync): permanent: upstream unavailable
run 2: failed: in state "sync" (attempt 1, path sync): permanent: upstream unavailable
run 3: failed: in state "sync" (attempt 1, path sync): permanent: upstream unavailable
flow tripped: streak 3, last error "upstream unavailable"
trigger refused: scheduler: flow is tripped: "sync" (streak 3): reset it first
after reset: run completed
flow streak 0, last error ""
`, out.String())
}
