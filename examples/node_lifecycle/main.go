// Node_lifecycle writes a task as a Node with cano's three phases: Prep
// reads what the work needs (and may fail), Exec does the work without
// touching the run (and cannot fail), Post decides the next state. A retry
// re-runs all three.
package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Analyze State = "analyze"
	Long    State = "long"
	Short   State = "short"
)

// Stats is what Exec computes.
type Stats struct {
	Words int `msgpack:"words"`
	Chars int `msgpack:"chars"`
}

// AnalyzeText counts the words of the run's input; texts of more than
// Threshold words end in long, others in short.
type AnalyzeText struct {
	Threshold int `msgpack:"threshold"`
}

// Kind implements fsm.Node.
func (AnalyzeText) Kind() string { return "analyze_text" }

// Prep reads the text from the run's input.
func (AnalyzeText) Prep(_ context.Context, tc *fsm.TaskContext) (string, error) {
	var text string
	if err := tc.Input(&text); err != nil {
		return "", err
	}
	return text, nil
}

// Exec counts; it sees only what Prep returned.
func (AnalyzeText) Exec(_ context.Context, text string) Stats {
	return Stats{Words: len(strings.Fields(text)), Chars: len(text)}
}

// Post chooses the exit state and hands the stats on.
func (a AnalyzeText) Post(_ context.Context, _ *fsm.TaskContext, s Stats) (fsm.Result, error) {
	if s.Words > a.Threshold {
		return fsm.NextWith(Long, s), nil
	}
	return fsm.NextWith(Short, s), nil
}

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("node_lifecycle", Analyze).
		Register(Analyze, fsm.NodeTask(AnalyzeText{Threshold: 5})).
		Exit(Long, Short)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.RegisterNode[AnalyzeText, string, Stats](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	for _, text := range []string{"prep exec post", "a node runs prep then exec then post on any worker"} {
		r, err := env.Client.Run(ctx, "node_lifecycle", &client.TriggerOpts{Input: text})
		if err != nil {
			return err
		}
		var s Stats
		if err := r.Output(&s); err != nil {
			return err
		}
		fmt.Fprintf(out, "%q: %d words, %d chars → %s\n", text, s.Words, s.Chars, r.State)
	}
	return nil
}
