package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
)

func TestVersioning(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 9, out.String())
	m := regexp.MustCompile(`^version 1 registered as (\S+) \(a hash of the definition\)$`).FindStringSubmatch(lines[0])
	require.NotNil(t, m, lines[0])
	v1 := m[1]
	require.NotEqual(t, "bonjour-1", v1)
	require.Equal(t, []string{
		"run 1 is in flight, waiting in state hold",
		fmt.Sprintf("version 2 registered as bonjour-1; versions: %s, bonjour-1; latest: bonjour-1", v1),
		fmt.Sprintf(`run 1, started before the change: "Hello, Ada!" on version %s`, v1),
		`run 2, started after it: "Bonjour, Ada!" on version bonjour-1`,
		fmt.Sprintf(`run 3, pinned to version 1: "Hello, Grace!" on version %s`, v1),
		"deleted version 1; versions left: bonjour-1",
		"deleting the latest version is refused without AllowLatest",
		"with AllowLatest it is deleted too: no version of greeting is left",
	}, lines[1:])
}

// TestVersioningTwiceOnOneServer: the example leaves no version behind, so
// it runs again against the same server (-s) as the first time.
func TestVersioningTwiceOnOneServer(t *testing.T) {
	// Not parallel: the example keeps what it shows in package variables.
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var first, second bytes.Buffer
	require.NoError(t, run(ctx, &first, srv.URL))
	require.NoError(t, run(ctx, &second, srv.URL), first.String())
	require.Equal(t, first.String(), second.String())
}
