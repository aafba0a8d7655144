// Scheduler_mapreduce_books is a two-level map-reduce fired by manual
// scheduler flows. Level one: two flows, one per shelf of books, are
// triggered together; each run maps with a dynamic split (fsm.SplitInto,
// one branch per book, each counting its book's words chunk by chunk),
// reduces its shelf's counts and appends them to a shared accumulator in
// the global store. Level two: a third flow's run merges the shelves'
// counts into the final tally.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflows' state type.
type State string

// The states.
const (
	Plan   State = "plan"
	Reduce State = "reduce"
	Merge  State = "merge"
	Done   State = "done"
)

// books are the opening lines of a few public-domain books.
var books = map[string]string{
	"Alice": `Alice was beginning to get very tired of sitting by her sister on the bank, and of having
nothing to do: once or twice she had peeped into the book her sister was reading.`,
	"Emma": `Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition,
seemed to unite some of the best blessings of existence.`,
	"Frankenstein": `You will rejoice to hear that no disaster has accompanied the commencement of an
enterprise which you have regarded with such evil forebodings.`,
	"Walden": `When I wrote the following pages, or rather the bulk of them, I lived alone, in the woods,
a mile from any neighbor, in a house which I had built myself.`,
	"Dracula": `Left Munich at 8:35 P. M., on 1st May, arriving at Vienna early next morning; should have
arrived at 6:46, but train was an hour late.`,
}

// words are the words counted.
var words = []string{"a", "and", "the", "of", "to", "in", "i"}

// chunkWords is how many words a book's task counts at a time.
const chunkWords = 8

// Shelf is a count_shelf run's input.
type Shelf struct {
	Batch string   `msgpack:"batch"`
	Name  string   `msgpack:"name"`
	Books []string `msgpack:"books"`
}

// Counts maps a word to its count.
type Counts map[string]int

// accumulator is the global store's key the shelves append to.
func accumulator(batch string) string { return "mapreduce_books." + batch }

// Accumulator is the worker resource the shelves append to: the global
// scope of the shared store (every worker process reaches the same keys).
type Accumulator struct {
	kvstore.ResourceDefaults
	store atomic.Pointer[kvstore.View]
}

// global returns the accumulator's store.
func global(tc *fsm.TaskContext) (kvstore.Store, error) {
	acc, err := kvstore.Get[*Accumulator](tc.Resources, "accumulator")
	if err != nil {
		return nil, err
	}
	if s := acc.store.Load(); s != nil {
		return s, nil
	}
	return nil, errors.New("the accumulator's store is not connected yet")
}

// PlanShelf maps: one CountBook branch per book of the shelf.
type PlanShelf struct{}

// Kind implements fsm.Task.
func (PlanShelf) Kind() string { return "plan_shelf" }

// Run implements fsm.Task.
func (PlanShelf) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var s Shelf
	if err := tc.Input(&s); err != nil {
		return fsm.Result{}, err
	}
	tasks := make([]fsm.Task, len(s.Books))
	for i, b := range s.Books {
		tasks[i] = CountBook{Title: b}
	}
	return fsm.SplitInto(fsm.JoinConfig[State]{Strategy: join.All(), JoinState: Reduce, Timeout: 30 * time.Second}, tasks...), nil
}

// CountBook counts one book's words, chunk by chunk.
type CountBook struct {
	Title string `msgpack:"title"`
}

// Kind implements fsm.Task.
func (CountBook) Kind() string { return "count_book" }

// Run implements fsm.Task.
func (c CountBook) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	text, ok := books[c.Title]
	if !ok {
		return fsm.Result{}, fsm.Permanent(fmt.Errorf("no book titled %q", c.Title))
	}
	all := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return r < 'a' || r > 'z' })
	counts := Counts{}
	for start := 0; start < len(all); start += chunkWords {
		merge(counts, countChunk(all[start:min(start+chunkWords, len(all))]))
	}
	return fsm.NextWith(Reduce, counts), nil
}

// countChunk counts the words of interest in one chunk.
func countChunk(chunk []string) Counts {
	c := Counts{}
	for _, w := range chunk {
		for _, want := range words {
			if w == want {
				c[w]++
			}
		}
	}
	return c
}

func merge(into, from Counts) {
	for w, n := range from {
		into[w] += n
	}
}

// ReduceShelf merges the shelf's books and appends the shelf's counts to
// the shared accumulator.
type ReduceShelf struct{}

// Kind implements fsm.Task.
func (ReduceShelf) Kind() string { return "reduce_shelf" }

// Run implements fsm.Task.
func (ReduceShelf) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var s Shelf
	if err := tc.Input(&s); err != nil {
		return fsm.Result{}, err
	}
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	total := Counts{}
	for _, b := range branches {
		c, err := fsm.BranchOutput[Counts](b)
		if err != nil {
			return fsm.Result{}, err
		}
		merge(total, c)
	}
	store, err := global(tc)
	if err != nil {
		return fsm.Result{}, err
	}
	if err := kvstore.AppendValue(ctx, store, accumulator(s.Batch), total); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Done, fmt.Sprintf("%s: %d books, %s", s.Name, len(branches), format(total))), nil
}

// Final is a final_reduce run's input.
type Final struct {
	Batch string `msgpack:"batch"`
}

// MergeShelves is the second level's reduce: it merges every shelf's
// counts from the accumulator.
type MergeShelves struct{}

// Kind implements fsm.Task.
func (MergeShelves) Kind() string { return "merge_shelves" }

// Run implements fsm.Task.
func (MergeShelves) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var f Final
	if err := tc.Input(&f); err != nil {
		return fsm.Result{}, err
	}
	store, err := global(tc)
	if err != nil {
		return fsm.Result{}, err
	}
	shelves, err := kvstore.GetAs[[]Counts](ctx, store, accumulator(f.Batch))
	if err != nil {
		return fsm.Result{}, err
	}
	total := Counts{}
	for _, c := range shelves {
		merge(total, c)
	}
	return fsm.NextWith(Done, fmt.Sprintf("all: %d shelves, %s", len(shelves), format(total))), nil
}

// format lists the counts, most frequent first.
func format(c Counts) string {
	ws := make([]string, 0, len(c))
	for w := range c {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool {
		if c[ws[i]] != c[ws[j]] {
			return c[ws[i]] > c[ws[j]]
		}
		return ws[i] < ws[j]
	})
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprintf("%s=%d", w, c[w])
	}
	return strings.Join(parts, " ")
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[PlanShelf](reg)
	fsm.Register[CountBook](reg)
	fsm.Register[ReduceShelf](reg)
	fsm.Register[MergeShelves](reg)
	shelf := fsm.New[State]("count_shelf", Plan).
		Register(Plan, PlanShelf{}).
		Register(Reduce, ReduceShelf{}).
		Exit(Done)
	final := fsm.New[State]("final_reduce", Merge).Register(Merge, MergeShelves{}).Exit(Done)
	acc := &Accumulator{}
	res := kvstore.NewResources(kvstore.ResourcesConfig{})
	res.Insert("accumulator", acc)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Scheduler: true, Resources: res,
		Workflows: []worker.Definer{shelf, final}})
	if err != nil {
		return err
	}
	defer env.Close()
	store, err := natskv.New(ctx, env.JS, natskv.Config{})
	if err != nil {
		return err
	}
	acc.store.Store(kvstore.Scoped(store, kvstore.GlobalScope()))

	// A batch id keeps this run's accumulator apart from earlier ones on a
	// shared server.
	batch := fmt.Sprintf("b%d", time.Now().UnixNano())
	defer func() { _ = acc.store.Load().Delete(context.WithoutCancel(ctx), accumulator(batch)) }()
	shelves := []Shelf{
		{Batch: batch, Name: "shelf-novels", Books: []string{"Alice", "Emma", "Frankenstein"}},
		{Batch: batch, Name: "shelf-travel", Books: []string{"Walden", "Dracula"}},
	}
	for _, s := range shelves {
		if err := addFlow(ctx, env.Flows, s.Name, "count_shelf", s); err != nil {
			return err
		}
	}
	if err := addFlow(ctx, env.Flows, "final-reduce", "final_reduce", Final{Batch: batch}); err != nil {
		return err
	}
	// Level one: both shelves at once.
	for _, s := range shelves {
		if err := env.Flows.Trigger(ctx, s.Name); err != nil {
			return err
		}
	}
	for _, s := range shelves {
		if err := report(ctx, out, env, s.Name); err != nil {
			return err
		}
	}
	// Level two: the final reduce, once both shelves are in.
	if err := env.Flows.Trigger(ctx, "final-reduce"); err != nil {
		return err
	}
	return report(ctx, out, env, "final-reduce")
}

func addFlow(ctx context.Context, flows *scheduler.Client, id, workflow string, input any) error {
	b, err := scheduler.EncodeInput(input)
	if err != nil {
		return err
	}
	// Remove a flow left by an earlier run on a shared server.
	_ = flows.Remove(ctx, id)
	return flows.Add(ctx, scheduler.Flow{ID: id, Workflow: workflow, Input: b, Schedule: scheduler.Manual()})
}

// report waits for the flow's run to end and prints its outcome.
func report(ctx context.Context, out io.Writer, env *local.Env, flow string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := env.Flows.Status(ctx, flow)
		if err != nil {
			return err
		}
		switch info.Status {
		case scheduler.StatusCompleted:
			return printRun(ctx, out, env.Client, flow)
		case scheduler.StatusBackoff, scheduler.StatusTripped:
			return fmt.Errorf("flow %s failed: %s", flow, info.LastError)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for flow %s: %w", flow, ctx.Err())
		}
	}
}

func printRun(ctx context.Context, out io.Writer, c *client.Client, flow string) error {
	runs, err := c.List(ctx, &client.ListOpts{Status: client.RunCompleted})
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.Flow != flow {
			continue
		}
		if r, err = c.Get(ctx, r.ID); err != nil {
			return err
		}
		var note string
		if err := r.Output(&note); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s via %s: %s\n", r.Status, strings.Join(r.Path, " → "), note)
		return nil
	}
	return fmt.Errorf("flow %s completed but its run is not listed", flow)
}
