package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSchedulerMapreduceBooks(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `completed via plan → reduce → done: shelf-novels: 3 books, of=5 the=4 to=4 and=3 a=1
completed via plan → reduce → done: shelf-travel: 2 books, i=3 the=3 a=2 in=2 of=1
completed via merge → done: all: 2 shelves, the=7 of=6 to=4 a=3 and=3 i=3 in=2
`, out.String())
}

func TestCountChunk(t *testing.T) {
	for _, tc := range []struct {
		chunk []string
		want  Counts
	}{
		{nil, Counts{}},
		{[]string{"the", "cat", "of", "the", "hat"}, Counts{"the": 2, "of": 1}},
		{[]string{"nothing", "here"}, Counts{}},
	} {
		require.Equal(t, tc.want, countChunk(tc.chunk))
	}
}
