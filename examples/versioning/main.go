// Versioning changes a workflow while a run is in flight. Every
// registration of a workflow is a version: derived from the definition's
// content unless the workflow sets one with .Version. A run is pinned to
// the version it started on, so the run already waiting finishes on the old
// version while runs started after the change use the new one; a trigger
// may still pin an old version (TriggerOpts.DefVersion) until it is deleted
// with DeleteWorkflowVersion.
package main

import (
	"context"
	"errors"
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
	Hold  State = "hold"
	Greet State = "greet"
	Done  State = "done"
)

// gate holds runs in their first state until it is opened, so the example
// can change the workflow while a run is in flight. run sets it before the
// worker starts.
var gate struct {
	entered chan struct{} // one value per run reaching Hold
	open    chan struct{} // closed to let every run through
}

// HoldUntilOpen waits at the gate, then moves to Greet.
type HoldUntilOpen struct{}

// Kind implements fsm.Task.
func (HoldUntilOpen) Kind() string { return "hold_until_open" }

// Run implements fsm.Task.
func (HoldUntilOpen) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	gate.entered <- struct{}{}
	select {
	case <-gate.open:
		return fsm.Next(Greet), nil
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
}

// SayHello greets the run input's name. Greeting is part of the
// definition: changing it changes the workflow's content, and so its
// version.
type SayHello struct {
	Greeting string `msgpack:"greeting"`
}

// Kind implements fsm.Task.
func (SayHello) Kind() string { return "say_hello" }

// Run implements fsm.Task.
func (s SayHello) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var name string
	if err := tc.Input(&name); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Done, s.Greeting+", "+name+"!"), nil
}

// greeting is the workflow, greeting with the given word.
func greeting(word string) *fsm.Workflow[State] {
	return fsm.New[State]("greeting", Hold).
		Register(Hold, HoldUntilOpen{}).
		Register(Greet, SayHello{Greeting: word}).
		Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	gate.entered, gate.open = make(chan struct{}, 4), make(chan struct{})
	reg := &fsm.Registry{}
	fsm.Register[HoldUntilOpen](reg)
	fsm.Register[SayHello](reg)

	// Version 1: no .Version, so its version is a hash of its content.
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{greeting("Hello")}})
	if err != nil {
		return err
	}
	defer env.Close()
	defer closeOnce(gate.open) // let a held run go if we return early
	v1, err := env.Client.Workflow(ctx, "greeting", "")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "version 1 registered as %s (a hash of the definition)\n", v1.Version)

	first, err := env.Client.Trigger(ctx, "greeting", &client.TriggerOpts{Input: "Ada"})
	if err != nil {
		return err
	}
	select {
	case <-gate.entered:
	case <-ctx.Done():
		return fmt.Errorf("the first run never reached %s: %w", Hold, ctx.Err())
	}
	fmt.Fprintf(out, "run 1 is in flight, waiting in state %s\n", Hold)

	// Deploy the change: a worker with the new definition registers it as
	// a new version, named this time, and latest moves to it. (A real
	// deployment would then stop the old worker; its task kinds are the
	// same, so either worker runs either version's tasks.)
	w2, err := worker.New(env.NC, worker.Config{Registry: reg,
		Workflows: []worker.Definer{greeting("Bonjour").Version("bonjour-1")}})
	if err != nil {
		return err
	}
	if err := w2.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = w2.Stop(context.Background()) }()
	wi, err := env.Client.Workflow(ctx, "greeting", "")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "version 2 registered as %s; versions: %s; latest: %s\n", wi.Version, versionList(wi), wi.Latest)

	second, err := env.Client.Trigger(ctx, "greeting", &client.TriggerOpts{Input: "Ada"})
	if err != nil {
		return err
	}
	pinned, err := env.Client.Trigger(ctx, "greeting", &client.TriggerOpts{Input: "Grace", DefVersion: v1.Version})
	if err != nil {
		return err
	}
	closeOnce(gate.open)
	for _, r := range []struct{ what, id string }{
		{"run 1, started before the change", first},
		{"run 2, started after it", second},
		{"run 3, pinned to version 1", pinned},
	} {
		if _, err := env.Client.Await(ctx, r.id); err != nil {
			return fmt.Errorf("%s: %w", r.what, err)
		}
		rec, err := env.Client.Get(ctx, r.id)
		if err != nil {
			return err
		}
		var greeting string
		if err := rec.Output(&greeting); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %q on version %s\n", r.what, greeting, rec.Version)
	}

	// No run needs version 1 any more: delete it. The latest version is
	// kept unless DeleteWorkflowVersionOpts.AllowLatest says otherwise.
	if err := env.Client.DeleteWorkflowVersion(ctx, "greeting", v1.Version, nil); err != nil {
		return err
	}
	if wi, err = env.Client.Workflow(ctx, "greeting", ""); err != nil {
		return err
	}
	fmt.Fprintf(out, "deleted version 1; versions left: %s\n", versionList(wi))
	err = env.Client.DeleteWorkflowVersion(ctx, "greeting", wi.Latest, nil)
	if !errors.Is(err, client.ErrLatestVersion) {
		return fmt.Errorf("want deleting the latest version refused, got %v", err)
	}
	fmt.Fprintln(out, "deleting the latest version is refused without AllowLatest")

	// Leave a shared server (-s) as it was, so that the example runs again
	// the same: with AllowLatest the latest version goes too.
	err = env.Client.DeleteWorkflowVersion(ctx, "greeting", wi.Latest, &client.DeleteWorkflowVersionOpts{AllowLatest: true})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "with AllowLatest it is deleted too: no version of greeting is left")
	return nil
}

func versionList(wi *client.WorkflowInfo) string {
	var vs []string
	for _, v := range wi.Versions {
		vs = append(vs, v.Version)
	}
	return strings.Join(vs, ", ")
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}
