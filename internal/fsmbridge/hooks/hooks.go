// Package hooks holds the function variables through which pkg/fsm hands
// the engine what it keeps unexported. pkg/fsm sets every variable in an
// init function; nothing else may set them. Do not call them directly: use
// the typed wrappers of package fsmbridge, which imports pkg/fsm and so
// guarantees the variables are set. Values of fsm types cross this package
// as any, since pkg/fsm imports it and it cannot import pkg/fsm.
package hooks

import (
	"context"
	"log/slog"

	"github.com/cano-nats/cano/pkg/protocol"
)

// TaskContext is what fsmbridge.NewTaskContext builds an *fsm.TaskContext
// from.
type TaskContext struct {
	// Cmd is the command being run.
	Cmd *protocol.TaskCommand
	// Attempt counts from 1; MaxAttempts is the policy's limit.
	Attempt, MaxAttempts int
	// Logger is the task's logger; nil discards.
	Logger *slog.Logger
	// Branches is a func(context.Context) ([]fsm.BranchOutcome, error), or
	// nil outside a join state.
	Branches any
	// LoadInput, if set, reads an input left in the run record.
	LoadInput func(ctx context.Context) ([]byte, protocol.InputFormat, error)
	// LoadPrevious, if set, reads a previous output left in the run record.
	LoadPrevious func(ctx context.Context) ([]byte, error)
}

// Set by pkg/fsm's init.
var (
	// NewTaskContext returns an *fsm.TaskContext.
	NewTaskContext func(p TaskContext) any
	// SplitSpec returns the wire spec of an fsm.Result's dynamic split, or
	// nil when the result is not a split.
	SplitSpec func(res any) (*protocol.SplitSpec, error)
	// BuildTask rebuilds the fsm.Task of a spec from an *fsm.Registry.
	BuildTask func(reg any, spec *protocol.TaskSpec) (any, error)
	// ErrorInfo converts an error to its wire form.
	ErrorInfo func(err error) *protocol.ErrorInfo
	// FromErrorInfo rebuilds a typed fsm error from its wire form.
	FromErrorInfo func(info *protocol.ErrorInfo) error
)
