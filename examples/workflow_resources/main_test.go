package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWorkflowResources(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `setup: price table loaded
setup: audit log opened
apple costs 3
pear costs 4
plum: failed: in state "price" (attempt 1, path price): permanent: no price for "plum"
worker health: healthy
worker health: degraded (prices: prices not refreshed)
a worker with a broken resource does not start: worker: resources: kvstore: setup of resource "orders_db" failed: connection refused
teardown: audit log flushed 2 line(s): quoted apple; quoted pear
teardown: price table closed
`, out.String())
}
