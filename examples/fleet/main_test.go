package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the coordinator and worker binaries and runs four processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `built cmd/coordinator and cmd/worker
started a coordinator and worker-1, worker-2, worker-3
triggered 30 runs of sleepy
killed worker-2 (SIGKILL) with runs in flight
30 of 30 runs completed, each via sleep → after → done
`, out.String())
}
