package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMixedWorkflow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `6 chair: confirmed via validate → stock → decide → confirmed: 9 chair in stock across the warehouses, 6 reserved
5 desk: backorder via validate → stock → decide → backorder: only 2 desk in stock, 5 ordered
0 lamp: in state "validate" (attempt 1, path validate): permanent: an order needs an item and a positive quantity
`, out.String())
}
