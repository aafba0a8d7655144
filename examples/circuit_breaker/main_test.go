package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `run 1 (service down)   failed: service down       service called: true  breaker: closed
run 2 (service down)   failed: service down       service called: true  breaker: open
run 3                  failed fast: circuit open  service called: false breaker: open
after the cool-down    completed                  service called: true  breaker: closed
`, out.String())
}
