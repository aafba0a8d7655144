package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJoinStrategies(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := map[string]int{"all": 4, "any": 1, "quorum": 2, "percentage": 2, "partial_results": 2}
	require.Len(t, lines, len(want), out.String())
	for _, line := range lines {
		var name, decision string
		var required, succeeded, cancelled int
		_, err := fmt.Sscanf(line, "%s %s required %d, succeeded %d, cancelled %d", &name, &decision, &required, &succeeded, &cancelled)
		require.NoError(t, err, line)
		require.Equal(t, "satisfied", decision, line)
		require.Equal(t, want[name], required, line)
		// A join decides once it has what it needs; branches that finished
		// in the same instant may also count, the rest are cancelled.
		require.GreaterOrEqual(t, succeeded, required, line)
		require.Equal(t, 4, succeeded+cancelled, line)
	}
}
