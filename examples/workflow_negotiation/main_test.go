package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWorkflowNegotiation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `ask 1000 (floor 600), offer 400 (budget 700): deal at 656 after 10 turns, ends in deal
ask 1000 (floor 800), offer 300 (budget 500): no deal: price 800, budget 500 after 12 turns, ends in no_deal
`, out.String())
}
