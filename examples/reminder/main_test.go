package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
)

func TestReminder(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, "scheduled: 2 reminders\n"+
		"ada: completed (sent at or after its start time: true)\n"+
		"grace: cancelled\n"+
		`sent: ["ada: your trip is tomorrow"]`+"\n",
		out.String())
}

// TestReminderTwiceOnOneServer: run again against the same server (-s),
// the example schedules its reminders again (a trip of its own, not the
// first run's idempotency keys).
func TestReminderTwiceOnOneServer(t *testing.T) {
	// Not parallel: the example keeps what it shows in package variables.
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var first, second bytes.Buffer
	require.NoError(t, run(ctx, &first, srv.URL))
	require.NoError(t, run(ctx, &second, srv.URL))
	require.Equal(t, first.String(), second.String())
	require.Contains(t, second.String(), "scheduled: 2 reminders")
}
