// Task_simple writes tasks as plain functions (fsm.TaskFunc): a generator
// makes numbers and keeps the even ones, a counter counts them.
package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
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
	Generate State = "generate"
	Count    State = "count"
	Done     State = "done"
)

// generate makes 20 pseudo-random numbers from the seed in the run's input
// and hands the even ones on.
func generate(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var seed uint64
	if err := tc.Input(&seed); err != nil {
		return fsm.Result{}, err
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	var even []int
	for range 20 {
		if n := rng.IntN(100); n%2 == 0 {
			even = append(even, n)
		}
	}
	return fsm.NextWith(Count, even), nil
}

// count reads the generator's numbers and completes with how many there are.
func count(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var even []int
	if err := tc.Previous(&even); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Done, len(even)), nil
}

// funcTask makes a task of a function; it has no parameters, so the worker
// builds it from the same function.
func funcTask(kind string, f func(context.Context, *fsm.TaskContext) (fsm.Result, error)) fsm.TaskFunc {
	return fsm.TaskFunc{KindName: kind, Func: f}
}

var (
	generator = funcTask("generate_numbers", generate)
	counter   = funcTask("count_numbers", count)
)

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("task_simple", Generate).
		Register(Generate, generator).
		Register(Count, counter).
		Exit(Done)
}

func registry() (*fsm.Registry, error) {
	reg := &fsm.Registry{}
	for _, t := range []fsm.TaskFunc{generator, counter} {
		if err := reg.RegisterTask(t); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg, err := registry()
	if err != nil {
		return err
	}
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	r, err := env.Client.Run(ctx, "task_simple", &client.TriggerOpts{Input: uint64(7)})
	if err != nil {
		return err
	}
	var n int
	if err := r.Output(&n); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %s, %d even numbers of 20\n", r.Status, strings.Join(r.Path, " → "), n)
	return nil
}
