package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSchedulerScheduling(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `heartbeat (every): 2 run(s) completed
report (cron): 1 run(s) completed
cleanup (manual): 1 run(s) completed, runs started: 1 (only when triggered)
`, out.String())
}
