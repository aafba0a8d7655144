package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWorkflowBookPrepositions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `three_books: completed via count → summarize → complete: 3 of 3 books, top prepositions: of 17, in 4, on 2
four_books: completed via count → summarize → partial: 3 of 4 books, top prepositions: of 17, in 4, on 2; missing: The Lost Book
`, out.String())
}
