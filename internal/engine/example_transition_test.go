package engine_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

type Light string

const (
	Red, Green, Off Light = "red", "green", "off"
)

type switchTo struct {
	To Light `msgpack:"to"`
}

func (switchTo) Kind() string { return "switch_to" }
func (s switchTo) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(s.To), nil
}

// The transition function is pure: a definition, a record, an input and
// the time give the next record and what to publish. The coordinator is
// the I/O around it.
func Example_transition() {
	wf := fsm.New[Light]("light", Red).
		Register(Red, switchTo{Green}).
		Register(Green, switchTo{Off}).
		Exit(Off)
	def, _ := wf.Definition()
	m, _ := engine.Compile(def)

	now := time.Unix(0, 0)
	rec, fx, _ := engine.Start(m, &protocol.Trigger{V: 1, Workflow: "light"}, "run-1", now)
	fmt.Println(rec.State, fx.Commands[0].Task.Kind)

	for _, next := range []Light{Green, Off} {
		in := engine.Input{Result: &protocol.TaskResult{RunID: "run-1", Step: rec.Step, Branch: -1,
			Status: protocol.ResultOK, Next: string(next)}}
		rec, fx, _ = engine.Apply(m, rec, in, now)
	}
	fmt.Println(rec.Status, rec.Path, fx.Ended)
	// Output:
	// red switch_to
	// completed [red green off] true
}

// Errors keep cano's categories across the wire.
func Example_errors() {
	info := fsmbridge.ErrorInfo(&fsm.RetryExhaustedError{Attempts: 4, Cause: fmt.Errorf("connection refused")})
	err := fsmbridge.FromErrorInfo(info)
	fmt.Println(info.Category, info.Attempts)
	fmt.Println(errorsIs(err, fsm.ErrRetryExhausted), errorsIs(err, fsm.ErrTimeout))
	// Output:
	// retry_exhausted 4
	// true false
}
