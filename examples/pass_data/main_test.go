package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPassData(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `"Ada Lovelace <ada@example.org>": completed via parse → enrich → format → done: Ada Lovelace (ada@example.org) at example.org
"no email here": failed at parse: in state "parse" (attempt 1, path parse): permanent: input "no email here": want "name <email>"
`, out.String())
}
