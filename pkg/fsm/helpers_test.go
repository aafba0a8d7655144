package fsm_test

import (
	"context"
	"log/slog"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

type St string

const (
	A, B, C, Done, Rejected St = "a", "b", "c", "done", "rejected"
)

type noop struct {
	Name string `msgpack:"name"`
}

func (noop) Kind() string { return "noop" }
func (noop) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}

// newTaskContext builds a task context as the worker does.
func newTaskContext(cmd *protocol.TaskCommand, attempt, maxAttempts int, log *slog.Logger,
	branches func(ctx context.Context) ([]fsm.BranchOutcome, error)) *fsm.TaskContext {
	return fsmbridge.NewTaskContext(fsmbridge.TaskContextParams{Cmd: cmd, Attempt: attempt, MaxAttempts: maxAttempts,
		Logger: log, Branches: branches})
}

// isSplit reports whether r is a dynamic split, as the worker sees it.
func isSplit(r fsm.Result) bool {
	spec, err := fsmbridge.SplitSpec(r)
	return err == nil && spec != nil
}
