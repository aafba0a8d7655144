package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWorkflowSplitJoin(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	lines := strings.Split(out.String(), "\n")
	require.Len(t, lines, 3, out.String())
	require.Equal(t, "all: completed via split → combine → complete, sum of 1..10 = 55", lines[0])
	require.True(t, strings.HasPrefix(lines[1],
		"all with a 250 ms join timeout: failed in state split: workflow: split task timeout exceeded"), lines[1])
}
