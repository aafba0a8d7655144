package dashboard

import (
	"fmt"
	"sort"

	"github.com/cano-nats/cano/pkg/client"
)

// Diagram geometry, in SVG user units.
const (
	nodeW    = 150
	nodeH    = 44
	colGap   = 70
	rowGap   = 28
	margin   = 20
	loopDrop = 36
)

// diagram is a workflow's state machine laid out for drawing: boxes in
// columns by distance from the initial state, edges between them, and the
// marks of one run (visited states, taken edges, the current state).
type diagram struct {
	Width, Height int
	Nodes         []node
	Edges         []edge
}

// node is one state's box.
type node struct {
	Name     string
	Kind     client.StateKind
	Label    string // the task kind, or the split's branches
	X, Y     int
	Initial  bool
	Visited  bool
	Current  bool   // the run is here and still running
	Final    string // "completed", "failed" or "cancelled" on an ended run's last state
	Branches []string
}

// edge is one transition's arrow; D is its SVG path.
type edge struct {
	From, To string
	D        string
	Taken    bool
	Defined  bool // known from the definition (split → join), not only seen in runs
}

// runMarks is what a diagram highlights for one run.
type runMarks struct {
	Path   []string
	Status client.RunStatus
}

// layoutDiagram lays out wf's states. observed are paths runs took: the
// definition does not know where a task state goes (its task chooses at
// run time), so those edges come from runs. marks, if not nil, highlights
// one run. It is pure: the same input gives the same diagram.
func layoutDiagram(wf *client.WorkflowInfo, observed [][]string, marks *runMarks) diagram {
	type key struct{ from, to string }
	index := map[string]int{}
	var names []string
	kinds := map[string]client.StateInfo{}
	add := func(name string) {
		if _, ok := index[name]; !ok {
			index[name] = len(names)
			names = append(names, name)
		}
	}
	for _, s := range wf.States {
		add(s.Name)
		kinds[s.Name] = s
	}
	var edges []key
	seen := map[key]bool{}
	defined := map[key]bool{}
	addEdge := func(from, to string, def bool) {
		add(from)
		add(to)
		k := key{from, to}
		if def {
			defined[k] = true
		}
		if !seen[k] {
			seen[k] = true
			edges = append(edges, k)
		}
	}
	for _, s := range wf.States {
		for _, n := range s.Next {
			addEdge(s.Name, n, true)
		}
		if s.OnFailure != "" {
			addEdge(s.Name, s.OnFailure, true)
		}
	}
	paths := observed
	if marks != nil {
		paths = append(append([][]string{}, observed...), marks.Path)
	}
	for _, p := range paths {
		for i := 0; i+1 < len(p); i++ {
			addEdge(p[i], p[i+1], false)
		}
		if len(p) == 1 {
			add(p[0])
		}
	}
	// Columns: breadth-first distance from the initial state; states no
	// edge reaches go after, exits last.
	col := map[string]int{}
	initial := wf.Initial
	if initial == "" && len(names) > 0 {
		initial = names[0]
	}
	if initial != "" {
		add(initial)
		col[initial] = 0
		queue := []string{initial}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, e := range edges {
				if e.from != cur {
					continue
				}
				if _, ok := col[e.to]; !ok {
					col[e.to] = col[cur] + 1
					queue = append(queue, e.to)
				}
			}
		}
	}
	maxCol := 0
	for _, c := range col {
		maxCol = max(maxCol, c)
	}
	for _, n := range names {
		if _, ok := col[n]; ok || kinds[n].Kind == client.StateExit {
			continue
		}
		maxCol++
		col[n] = maxCol
	}
	for _, n := range names {
		if _, ok := col[n]; !ok { // an unreached exit
			col[n] = maxCol + 1
		}
	}
	// Rows: registration order within a column.
	order := append([]string{}, names...)
	sort.SliceStable(order, func(i, j int) bool { return col[order[i]] < col[order[j]] })
	row := map[string]int{}
	rows := map[int]int{}
	maxRow, lastCol := 0, 0
	for _, n := range order {
		row[n] = rows[col[n]]
		rows[col[n]]++
		maxRow = max(maxRow, row[n])
		lastCol = max(lastCol, col[n])
	}
	var d diagram
	d.Width = 2*margin + (lastCol+1)*nodeW + lastCol*colGap
	d.Height = 2*margin + (maxRow+1)*nodeH + maxRow*rowGap + loopDrop
	pos := func(n string) (int, int) {
		return margin + col[n]*(nodeW+colGap), margin + row[n]*(nodeH+rowGap)
	}
	visited := map[string]bool{}
	taken := map[key]bool{}
	var last string
	if marks != nil {
		for i, s := range marks.Path {
			visited[s] = true
			if i+1 < len(marks.Path) {
				taken[key{s, marks.Path[i+1]}] = true
			}
		}
		if len(marks.Path) > 0 {
			last = marks.Path[len(marks.Path)-1]
		}
	}
	for _, n := range names {
		x, y := pos(n)
		s := kinds[n]
		nd := node{Name: n, Kind: s.Kind, X: x, Y: y, Initial: n == initial, Visited: visited[n],
			Branches: s.Branches}
		switch s.Kind {
		case client.StateTask:
			nd.Label = s.Task
		case client.StateSplit:
			nd.Label = fmt.Sprintf("split ×%d", len(s.Branches))
			if s.Join != nil {
				nd.Label += " · " + s.Join.Strategy
			}
		case client.StateExit:
			nd.Label = "exit"
		default:
			nd.Label = "?"
		}
		if n == last && marks != nil {
			if marks.Status == client.RunRunning {
				nd.Current = true
			} else {
				nd.Final = string(marks.Status)
			}
		}
		d.Nodes = append(d.Nodes, nd)
	}
	for _, e := range edges {
		x1, y1 := pos(e.from)
		x2, y2 := pos(e.to)
		var path string
		if col[e.to] > col[e.from] {
			sx, sy := x1+nodeW, y1+nodeH/2
			tx, ty := x2, y2+nodeH/2
			mx := (sx + tx) / 2
			path = fmt.Sprintf("M%d,%d C%d,%d %d,%d %d,%d", sx, sy, mx, sy, mx, ty, tx, ty)
		} else {
			// Back edge or same column: a loop under the boxes.
			sx, sy := x1+nodeW/2+10, y1+nodeH
			tx, ty := x2+nodeW/2-10, y2+nodeH
			low := max(sy, ty) + loopDrop
			path = fmt.Sprintf("M%d,%d C%d,%d %d,%d %d,%d", sx, sy, sx, low, tx, low, tx, ty)
		}
		d.Edges = append(d.Edges, edge{From: e.from, To: e.to, D: path, Taken: taken[e], Defined: defined[e]})
	}
	return d
}
