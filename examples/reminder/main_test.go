package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
