package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `flaky: attempt 1 of 4 failed
flaky: attempt 2 of 4 failed
flaky: attempt 3 of 4 succeeded
flaky: completed via call → done
down: attempt 1 of 3 failed
down: attempt 2 of 3 failed
down: attempt 3 of 3 failed
down: failed, retries exhausted
refused: attempt 1 of 3 failed
refused: failed: in state "call" (attempt 1, path call): permanent: request refused: bad credentials
`, out.String())
}
