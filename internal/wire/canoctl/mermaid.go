package canoctl

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/cano-nats/cano/pkg/client"
)

// mermaidID matches a state name usable as a Mermaid state id as is.
var mermaidID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// mermaidReserved are words Mermaid's state diagram parser treats as
// keywords.
var mermaidReserved = map[string]bool{
	"state": true, "note": true, "end": true, "direction": true, "class": true,
	"classDef": true, "style": true, "as": true, "fork": true, "join": true, "choice": true,
}

// mermaidDiagram draws wf as a Mermaid stateDiagram-v2: the initial state,
// task states with their task kind, each split as a <<fork>> to its
// branches and a <<join>> into its join state, exits to [*], and the
// transitions out of task states that the given runs took (seen), which
// the definition does not hold. It is a pure function.
func mermaidDiagram(wf *client.WorkflowInfo, seen [][2]string, runsRead int) string {
	var b strings.Builder
	ids := map[string]string{}
	used := map[string]bool{}
	id := func(name string) string {
		if v, ok := ids[name]; ok {
			return v
		}
		v := name
		if !mermaidID.MatchString(v) || mermaidReserved[v] || strings.HasPrefix(v, "s_") {
			v = "s_" + regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(name, "_")
		}
		for used[v] {
			v += "_"
		}
		used[v] = true
		ids[name] = v
		return v
	}
	w := func(format string, a ...any) { fmt.Fprintf(&b, "    "+format+"\n", a...) }
	b.WriteString("stateDiagram-v2\n")
	w("%%%% workflow %s version %s", wf.Name, wf.Version)
	w("%%%% A task state's next states are chosen by its task at run time and are not in the definition;")
	if runsRead > 0 {
		w("%%%% the edges labelled \"seen\" are the ones taken by the last %d runs of this version.", runsRead)
	} else {
		w("%%%% no runs of this version were read, so no edges leave task states.")
	}
	kinds := map[string]client.StateKind{}
	for _, s := range wf.States {
		kinds[s.Name] = s.Kind
		sid := id(s.Name)
		if sid != s.Name {
			w("state \"%s\" as %s", s.Name, sid)
		}
	}
	if wf.Initial != "" {
		w("[*] --> %s", id(wf.Initial))
	}
	for _, s := range wf.States {
		sid := id(s.Name)
		switch s.Kind {
		case client.StateTask:
			if s.Task != "" {
				w("%s : task %s", sid, s.Task)
			}
		case client.StateSplit:
			fork, joinID := id(s.Name+"__fork"), id(s.Name+"__join")
			w("%s : split", sid)
			w("state %s <<fork>>", fork)
			w("state %s <<join>>", joinID)
			w("%s --> %s", sid, fork)
			for i, task := range s.Branches {
				br := id(fmt.Sprintf("%s__b%d", s.Name, i))
				w("state \"%s[%d] %s\" as %s", s.Name, i, task, br)
				w("%s --> %s", fork, br)
				w("%s --> %s", br, joinID)
			}
			label := ""
			if s.Join != nil {
				label = " : join " + joinLabel(s.Join)
			}
			for _, n := range s.Next {
				w("%s --> %s%s", joinID, id(n), label)
			}
		case client.StateExit:
			w("%s --> [*]", sid)
		}
		if s.OnFailure != "" {
			w("%s --> %s : on failure", sid, id(s.OnFailure))
		}
	}
	sort.Slice(seen, func(i, j int) bool {
		if seen[i][0] != seen[j][0] {
			return seen[i][0] < seen[j][0]
		}
		return seen[i][1] < seen[j][1]
	})
	for _, e := range seen {
		if kinds[e[0]] != client.StateTask {
			continue // splits and exits are drawn from the definition
		}
		w("%s --> %s : seen", id(e[0]), id(e[1]))
	}
	return b.String()
}

// joinLabel is a join's strategy in a few words.
func joinLabel(j *client.JoinInfo) string {
	s := j.Strategy
	switch {
	case j.N > 0:
		s += fmt.Sprintf(" %d", j.N)
	case j.Percentage > 0:
		s += fmt.Sprintf(" %g%%", j.Percentage*100)
	}
	if j.Timeout > 0 {
		s += ", timeout " + j.Timeout.String()
	}
	return s
}

// seenEdges collects the distinct transitions in paths.
func seenEdges(paths [][]string) [][2]string {
	set := map[[2]string]bool{}
	var out [][2]string
	for _, p := range paths {
		for i := 1; i < len(p); i++ {
			e := [2]string{p[i-1], p[i]}
			if !set[e] {
				set[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}
