package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/fsm"
)

// Noop moves to Next at once: the unit of the benchmarks.
type Noop struct {
	Next string `msgpack:"next"`
}

// Kind implements fsm.Task.
func (Noop) Kind() string { return "noop" }

// Run implements fsm.Task.
func (n Noop) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(n.Next), nil
}

// Sleep waits D (or its context) and moves to Next: tasks that are still
// running when a process is killed.
type Sleep struct {
	D    time.Duration `msgpack:"d"`
	Next string        `msgpack:"next"`
}

// Kind implements fsm.Task.
func (Sleep) Kind() string { return "sleep" }

// Run implements fsm.Task.
func (s Sleep) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(s.D):
		return fsm.Next(s.Next), nil
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
}

// Workflow names of the benchmark and fault-test workflows.
const (
	OneTaskName = "one_task"
	ChainName   = "chain10"
	SleepyName  = "sleepy"
)

// OneTask is a one-task no-op workflow.
func OneTask() *fsm.Workflow[string] {
	// The default retry policy: a redelivery after a crash or a stream
	// leader failover costs an attempt, and there are attempts to spare.
	return fsm.New[string](OneTaskName, "work").Register("work", Noop{Next: "done"}).Exit("done")
}

// Chain is a 10-state no-op chain.
func Chain() *fsm.Workflow[string] {
	wf := fsm.New[string](ChainName, "s0")
	for i := 0; i < 10; i++ {
		next := fmt.Sprintf("s%d", i+1)
		if i == 9 {
			next = "done"
		}
		wf.Register(fmt.Sprintf("s%d", i), Noop{Next: next})
	}
	return wf.Exit("done")
}

// Sleepy runs one task that sleeps d, then a no-op.
func Sleepy(d time.Duration) *fsm.Workflow[string] {
	// Both states retry (the default policy): a worker killed mid-task
	// costs the task an attempt, as the broker counts it.
	return fsm.New[string](SleepyName, "sleep").Register("sleep", Sleep{D: d, Next: "after"}).
		Register("after", Noop{Next: "done"}).Exit("done")
}

// RegisterAll adds every demo kind to reg.
func RegisterAll(reg *fsm.Registry) {
	Register(reg)
	fsm.Register[Noop](reg)
	fsm.Register[Sleep](reg)
}
