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
	require.Len(t, lines, 5, out.String())
	require.Equal(t, `trigger reply: {"v":1,"run_id":"hello-ada"}`, lines[0])
	require.Equal(t, `run hello-ada: completed via greet → done, output "Hello, Ada!"`, lines[1])
	require.True(t, strings.HasPrefix(lines[2], `bad body reply: {"v":1,"error":{"category":"configuration","message":"the trigger did not decode: `), lines[2])
	require.Contains(t, lines[2], "not a trigger envelope")
	require.Contains(t, lines[3], `stored by the broker: {"stream":"CANO_TRIGGERS","seq":`)
	require.True(t, strings.HasPrefix(lines[4], "dead-lettered (malformed) from cano.trigger.hello: the trigger did not decode: "), lines[4])
	require.Contains(t, lines[4], "not a trigger envelope")
}
