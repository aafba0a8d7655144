package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/demo"
)

func TestParallelFetch(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `path: start → aggregate → complete
aggregated: data_from_1,data_from_2,data_from_3
split at start: 3 of 3 branches succeeded, join all: satisfied
`, out.String())
}

// The dev demo (coordinator -dev) runs this example's workflow: the same
// definition, so running the example against a dev server registers no
// second version of parallel_fetch and moves nothing.
func TestSameAsTheDevDemo(t *testing.T) {
	t.Parallel()
	mine, err := workflow().Definition()
	require.NoError(t, err)
	dev, err := demo.Workflow().Definition()
	require.NoError(t, err)
	require.Equal(t, dev, mine)
}
