package dashboard

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenWorkflow has a task, a split joined into a task that may loop
// back, and two exits, one never reached.
func goldenWorkflow() *client.WorkflowInfo {
	return &client.WorkflowInfo{Name: "orders", Version: "v1", Initial: "fetch", States: []client.StateInfo{
		{Name: "fetch", Kind: client.StateTask, Task: "fetch_order"},
		{Name: "fan", Kind: client.StateSplit, Branches: []string{"price", "stock", "fraud"},
			Join: &client.JoinInfo{Strategy: "all", State: "merge"}, Next: []string{"merge"}},
		{Name: "merge", Kind: client.StateTask, Task: "merge_checks"},
		{Name: "done", Kind: client.StateExit},
		{Name: "rejected", Kind: client.StateExit},
	}}
}

func TestLayoutColumns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		observed [][]string
		want     map[string]int // state → column
	}{
		{"definition only", nil, map[string]int{"fetch": 0, "fan": 1, "merge": 2, "done": 3, "rejected": 3}},
		{"one run", [][]string{{"fetch", "fan", "merge", "done"}}, map[string]int{"fetch": 0, "fan": 1, "merge": 2, "done": 3, "rejected": 4}},
		{"a loop does not move the initial state", [][]string{{"fetch", "fan", "merge", "fetch", "fan", "merge", "rejected"}},
			map[string]int{"fetch": 0, "fan": 1, "merge": 2, "rejected": 3, "done": 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := layoutDiagram(goldenWorkflow(), tc.observed, nil)
			got := map[string]int{}
			for _, n := range d.Nodes {
				got[n.Name] = (n.X - margin) / (nodeW + colGap)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestLayoutMarks(t *testing.T) {
	t.Parallel()
	path := []string{"fetch", "fan", "merge", "fetch", "fan", "merge"}
	d := layoutDiagram(goldenWorkflow(), nil, &runMarks{Path: path, Status: client.RunRunning})
	byName := map[string]node{}
	for _, n := range d.Nodes {
		byName[n.Name] = n
	}
	require.True(t, byName["merge"].Current)
	require.True(t, byName["fetch"].Visited)
	require.False(t, byName["done"].Visited)
	taken := map[string]bool{}
	for _, e := range d.Edges {
		if e.Taken {
			taken[e.From+">"+e.To] = true
		}
	}
	require.Equal(t, map[string]bool{"fetch>fan": true, "fan>merge": true, "merge>fetch": true}, taken)

	d = layoutDiagram(goldenWorkflow(), nil, &runMarks{Path: []string{"fetch", "rejected"}, Status: client.RunFailed})
	for _, n := range d.Nodes {
		require.Equal(t, n.Name == "rejected", n.Final == "failed", n.Name)
		require.False(t, n.Current)
	}
}

// TestDiagramGolden renders the golden workflow with a running run that
// looped once; testdata/diagram.golden.svg is the expected SVG (regenerate
// with -update, and look at it: testdata/diagram.html shows it styled).
func TestDiagramGolden(t *testing.T) {
	t.Parallel()
	tmpl, err := parseTemplates()
	require.NoError(t, err)
	d := layoutDiagram(goldenWorkflow(), [][]string{{"fetch", "fan", "merge", "done"}},
		&runMarks{Path: []string{"fetch", "fan", "merge", "fetch", "fan", "merge"}, Status: client.RunRunning})
	var buf bytes.Buffer
	require.NoError(t, tmpl.ExecuteTemplate(&buf, "diagram", d))
	golden := filepath.Join("testdata", "diagram.golden.svg")
	if *update {
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), buf.String())
}
