package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWorkflowCancellation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	lines := strings.Split(out.String(), "\n")
	require.Len(t, lines, 4, out.String())
	require.Equal(t, "shipping started; cancelling the run", lines[0])
	require.True(t, strings.HasPrefix(lines[1], "run cancelled in ship after pack → ship: "), lines[1])
	require.Contains(t, lines[1], "run cancelled: customer changed their mind")
	require.Equal(t, "the ship task stopped: context canceled", lines[2])
}
