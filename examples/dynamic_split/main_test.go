package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDynamicSplit(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `9 words: completed via plan → reduce → done: 11 vowels in 9 words
6 words: completed via plan → reduce → done: 14 vowels in 6 words
0 words: completed via plan → done: nothing to count
`, out.String())
}
