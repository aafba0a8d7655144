package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOrder(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `order A-1: completed via validate → charge → done (A-1), gateway calls: 2
order A-2: completed via validate → charge → rejected (card declined), gateway calls: 1
order A-3: completed via validate → rejected (invalid order), gateway calls: 0
`, out.String())
}
