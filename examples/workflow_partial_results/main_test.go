package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWorkflowPartialResults(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `completed via query → collect → done
branch 0: failed (permanent: eu is down)
branch 1: succeeded (us answered)
branch 2: succeeded (ap answered)
branch 3: cancelled
`, out.String())
}
