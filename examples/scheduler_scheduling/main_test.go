package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/scheduler"
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

// TestSchedulerSchedulingTwiceOnOneServer: the example removes its flows
// when it ends, so none goes on firing on a shared server (-s), and a
// second run adds them again and prints the same.
func TestSchedulerSchedulingTwiceOnOneServer(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var first, second bytes.Buffer
	require.NoError(t, run(ctx, &first, srv.URL))
	_, js := srv.Connect(t)
	flows, err := scheduler.NewClient(js, scheduler.ClientConfig{})
	require.NoError(t, err)
	left, err := flows.List(ctx)
	require.NoError(t, err)
	require.Empty(t, left, "flows left on the server")
	require.NoError(t, run(ctx, &second, srv.URL))
	require.Equal(t, first.String(), second.String())
}
