package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSaga(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, "ada: reserve → charge → confirm → booked (confirmed); seat held: true\n"+
		"grace: reserve → charge → release → cancelled (seat released: charge failed after 4 attempts); seat held: false\n",
		out.String())
}
