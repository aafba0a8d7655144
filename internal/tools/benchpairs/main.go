// Command benchpairs compares two canobench command lines in alternating
// pairs and reports, for each figure, the median of the pair ratios B/A and
// their quartiles.
//
// On a shared 2-core VM one canobench run moves by ±10 % and more from one
// minute to the next, so two runs of two builds say little about an effect
// of a few per cent. Runs next to each other in time share the machine's
// state: benchpairs runs A and B back to back, alternating which goes first
// (ABBA), and summarises the ratios of each pair, not the runs. Run it with
// the same command as A and B first: the spread it reports then is the
// noise to beat (on 2026-12-02, 30 pairs of one-task runs: median 1.001,
// quartiles 0.957–1.027).
//
//	go build -o /tmp/cb-old ./cmd/canobench   # on the base commit
//	go build -o /tmp/cb-new ./cmd/canobench   # on the change
//	go run ./internal/tools/benchpairs -pairs 24 -a /tmp/cb-old -b /tmp/cb-new -- -scenarios onetask -n 20000
//
// -a and -b are command lines (split on spaces), so one build can be
// compared with itself under other flags: -b '/tmp/cb-new -defer-start 500ms'.
// The arguments after -- are given to both, followed by -json.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

func main() {
	pairs := flag.Int("pairs", 24, "pairs to run")
	a := flag.String("a", "", "command line A (the base), e.g. /tmp/cb-old")
	b := flag.String("b", "", "command line B (the change)")
	flag.Parse()
	if *a == "" || *b == "" || *pairs < 1 {
		fmt.Fprintln(os.Stderr, "benchpairs: give -a and -b (canobench command lines) and -pairs ≥ 1; see go doc ./internal/tools/benchpairs")
		os.Exit(2)
	}
	common := append(flag.Args(), "-json")
	cmds := [2][]string{append(strings.Fields(*a), common...), append(strings.Fields(*b), common...)}
	var runs [2][]map[string]float64
	for i := range *pairs {
		order := [2]int{0, 1}
		if i%2 == 1 {
			order = [2]int{1, 0}
		}
		for _, k := range order {
			figs, err := run(cmds[k])
			if err != nil {
				fmt.Fprintf(os.Stderr, "benchpairs: pair %d, %s: %v\n", i+1, "AB"[k:k+1], err)
				os.Exit(1)
			}
			runs[k] = append(runs[k], figs)
		}
		fmt.Fprintf(os.Stderr, "\rpair %d/%d", i+1, *pairs)
	}
	fmt.Fprintln(os.Stderr)
	write(os.Stdout, summarise(runs[0], runs[1]))
}

// run runs one canobench command and returns its figures, keyed
// scenario/figure.
func run(cmd []string) (map[string]float64, error) {
	var out, errOut bytes.Buffer
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdout, c.Stderr = &out, &errOut
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, lastLine(errOut.String()))
	}
	return figures(out.Bytes())
}

// report is the part of canobench -json that benchpairs reads.
type report struct {
	Results []struct {
		Scenario string             `json:"scenario"`
		Figures  map[string]float64 `json:"figures"`
	} `json:"results"`
}

// figures reads canobench -json output: each figure keyed
// scenario/figure.
func figures(data []byte) (map[string]float64, error) {
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading canobench -json output: %w", err)
	}
	out := map[string]float64{}
	for _, res := range r.Results {
		for k, v := range res.Figures {
			out[res.Scenario+"/"+k] = v
		}
	}
	return out, nil
}

// row is one figure's summary over the pairs.
type row struct {
	name        string
	a, b        float64 // the medians of A's and B's runs
	q1, med, q3 float64 // quartiles of the pair ratios B/A
	n           int     // pairs with the figure in both runs and A's nonzero
}

// summarise gives a row per figure present in any pair, sorted by name.
func summarise(a, b []map[string]float64) []row {
	names := map[string]bool{}
	for _, m := range a {
		for k := range m {
			names[k] = true
		}
	}
	var rows []row
	for name := range names {
		var ratios, av, bv []float64
		for i := range min(len(a), len(b)) {
			x, okA := a[i][name]
			y, okB := b[i][name]
			if !okA || !okB {
				continue
			}
			av, bv = append(av, x), append(bv, y)
			if x != 0 {
				ratios = append(ratios, y/x)
			}
		}
		if len(ratios) == 0 {
			continue
		}
		q1, med, q3 := quartiles(ratios)
		rows = append(rows, row{name: name, a: median(av), b: median(bv), q1: q1, med: med, q3: q3, n: len(ratios)})
	}
	slices.SortFunc(rows, func(x, y row) int { return strings.Compare(x.name, y.name) })
	return rows
}

func write(w io.Writer, rows []row) {
	fmt.Fprintf(w, "%-36s %12s %12s   %s\n", "figure", "A (median)", "B (median)", "B/A: median of pairs (quartiles), pairs")
	for _, r := range rows {
		fmt.Fprintf(w, "%-36s %12.2f %12.2f   %.3f (%.3f–%.3f), %d\n", r.name, r.a, r.b, r.med, r.q1, r.q3, r.n)
	}
}

// quartiles returns the lower quartile, median and upper quartile of xs
// (linear interpolation between the closest ranks).
func quartiles(xs []float64) (q1, med, q3 float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.25), quantile(s, 0.5), quantile(s, 0.75)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// quantile of sorted, non-empty s.
func quantile(s []float64, q float64) float64 {
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
