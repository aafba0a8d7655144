package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTriggerFromAnywhere(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 4, out.String())
	require.Contains(t, lines[0], `trigger reply: {"stream":"CANO_TRIGGERS","seq":`)
	require.Equal(t, `run hello-ada: completed via greet → done, output "Hello, Ada!"`, lines[1])
	require.Contains(t, lines[2], `bad body reply: {"stream":"CANO_TRIGGERS","seq":`)
	require.True(t, strings.HasPrefix(lines[3], "dead-lettered (malformed) from cano.trigger.hello: "), lines[3])
	require.Contains(t, lines[3], "not a trigger envelope")
}
