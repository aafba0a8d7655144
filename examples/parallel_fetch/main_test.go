package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParallelFetch(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `path: start → aggregate → complete
aggregated: source_1=data_from_1, source_2=data_from_2, source_3=data_from_3
split at start: 3 of 3 branches succeeded, join all: satisfied
`, out.String())
}
