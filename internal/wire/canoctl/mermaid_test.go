package canoctl_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -run %s -update to create it", t.Name())
	require.Equal(t, string(want), got)
}

var (
	mmID    = `(?:\[\*\]|[A-Za-z][A-Za-z0-9_]*)`
	mmLines = []*regexp.Regexp{
		regexp.MustCompile(`^%%.*$`),
		regexp.MustCompile(`^state "[^"]+" as [A-Za-z][A-Za-z0-9_]*$`),
		regexp.MustCompile(`^state [A-Za-z][A-Za-z0-9_]* <<(fork|join)>>$`),
		regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]* : [^:]+$`),
		regexp.MustCompile(`^` + mmID + ` --> ` + mmID + `( : [^:]+)?$`),
	}
	mmEdge   = regexp.MustCompile(`^(` + mmID + `) --> (` + mmID + `)`)
	mmPseudo = regexp.MustCompile(`^state ([A-Za-z0-9_]+) <<(fork|join)>>$`)
)

// checkMermaid checks the structure of a stateDiagram-v2: the header,
// every line one of the statements canoctl writes, an initial edge, an
// edge to [*], each fork with edges out and each join with edges in and out.
func checkMermaid(t *testing.T, d string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(d, "\n"), "\n")
	require.Equal(t, "stateDiagram-v2", lines[0])
	out, in := map[string]int{}, map[string]int{}
	pseudo := map[string]string{}
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		ok := false
		for _, re := range mmLines {
			ok = ok || re.MatchString(l)
		}
		require.True(t, ok, "not a stateDiagram-v2 statement canoctl writes: %q", l)
		if m := mmEdge.FindStringSubmatch(l); m != nil {
			out[m[1]]++
			in[m[2]]++
		}
		if m := mmPseudo.FindStringSubmatch(l); m != nil {
			pseudo[m[1]] = m[2]
		}
	}
	require.Equal(t, 1, out["[*]"], "one initial edge")
	require.Positive(t, in["[*]"], "an edge to an end")
	require.NotEmpty(t, pseudo, "a split draws a fork and a join")
	for id, kind := range pseudo {
		require.Positive(t, out[id], "%s %s has edges out", kind, id)
		if kind == "join" {
			require.Positive(t, in[id], "join %s has edges in", id)
		}
	}
}
