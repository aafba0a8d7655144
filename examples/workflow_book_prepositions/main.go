// Workflow_book_prepositions counts the prepositions of a few books in
// parallel, one split branch per book, over the opening sentences of three
// public-domain novels bundled below. The join (PartialResults) goes on
// once three books are counted; the summary state takes the partial path
// when a book is missing, naming it, and the complete path otherwise.
package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Count     State = "count"
	Summarize State = "summarize"
	Complete  State = "complete"
	Partial   State = "partial"
)

// books are the opening sentences of three public-domain novels.
var books = map[string]string{
	"Pride and Prejudice": `It is a truth universally acknowledged, that a single man in possession of a good fortune,
must be in want of a wife. However little known the feelings or views of such a man may be on his first
entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is
considered as the rightful property of some one or other of their daughters.`,
	"A Tale of Two Cities": `It was the best of times, it was the worst of times, it was the age of wisdom, it was the
age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light,
it was the season of Darkness, it was the spring of hope, it was the winter of despair.`,
	"Moby-Dick": `Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my
purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the
watery part of the world.`,
}

// prepositions are the words counted.
var prepositions = map[string]bool{"about": true, "as": true, "at": true, "by": true, "for": true,
	"from": true, "in": true, "into": true, "of": true, "on": true, "to": true, "with": true}

// CountPrepositions counts the prepositions of one book.
type CountPrepositions struct {
	Title string `msgpack:"title"`
}

// Kind implements fsm.Task.
func (CountPrepositions) Kind() string { return "count_prepositions" }

// Run implements fsm.Task.
func (c CountPrepositions) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	text, ok := books[c.Title]
	if !ok {
		return fsm.Result{}, fsm.Permanent(fmt.Errorf("no text for %q", c.Title))
	}
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return r < 'a' || r > 'z' }) {
		if prepositions[w] {
			counts[w]++
		}
	}
	return fsm.NextWith(Summarize, counts), nil
}

// SummarizeCounts adds the books' counts and names the books missing.
type SummarizeCounts struct {
	Titles []string `msgpack:"titles"`
}

// Kind implements fsm.Task.
func (SummarizeCounts) Kind() string { return "summarize_counts" }

// Run implements fsm.Task.
func (s SummarizeCounts) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	total := map[string]int{}
	var missing []string
	for _, b := range branches {
		counts, err := fsm.BranchOutput[map[string]int](b)
		if err != nil {
			missing = append(missing, s.Titles[b.Index])
			continue
		}
		for w, n := range counts {
			total[w] += n
		}
	}
	words := make([]string, 0, len(total))
	for w := range total {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool {
		if total[words[i]] != total[words[j]] {
			return total[words[i]] > total[words[j]]
		}
		return words[i] < words[j]
	})
	var top []string
	for _, w := range words[:min(3, len(words))] {
		top = append(top, fmt.Sprintf("%s %d", w, total[w]))
	}
	summary := fmt.Sprintf("%d of %d books, top prepositions: %s", len(branches)-len(missing), len(branches), strings.Join(top, ", "))
	if len(missing) > 0 {
		return fsm.NextWith(Partial, summary+"; missing: "+strings.Join(missing, ", ")), nil
	}
	return fsm.NextWith(Complete, summary), nil
}

// workflow counts titles' prepositions, going on once three are counted.
func workflow(name string, titles ...string) *fsm.Workflow[State] {
	var tasks []fsm.Task
	for _, t := range titles {
		tasks = append(tasks, CountPrepositions{Title: t})
	}
	return fsm.New[State](name, Count).
		RegisterSplit(Count, tasks, fsm.JoinConfig[State]{Strategy: join.PartialResults(3), JoinState: Summarize,
			Timeout: 10 * time.Second}).
		Register(Summarize, SummarizeCounts{Titles: titles}).
		Exit(Complete, Partial)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[CountPrepositions](reg)
	fsm.Register[SummarizeCounts](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{
		workflow("three_books", "Pride and Prejudice", "A Tale of Two Cities", "Moby-Dick"),
		workflow("four_books", "Pride and Prejudice", "A Tale of Two Cities", "Moby-Dick", "The Lost Book"),
	}})
	if err != nil {
		return err
	}
	defer env.Close()
	for _, name := range []string{"three_books", "four_books"} {
		r, err := env.Client.Run(ctx, name, nil)
		if err != nil {
			return err
		}
		var summary string
		if err := r.Output(&summary); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %s via %s: %s\n", name, r.Status, strings.Join(r.Path, " → "), summary)
	}
	return nil
}
