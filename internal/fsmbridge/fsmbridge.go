// Package fsmbridge is how the engine (pkg/worker, pkg/coordinator,
// pkg/client, internal/engine's users) reaches what pkg/fsm keeps out of
// its public surface: building a TaskContext, rebuilding a task from its
// spec, reading a Result's dynamic split, and converting errors to and from
// their wire form.
//
// pkg/fsm sets the function variables of package hooks in an init
// function; this package imports pkg/fsm, so they are set before any of its
// functions runs, and wraps them with their real types. It is the only
// place where fsm values cross as any.
package fsmbridge

import (
	"context"
	"log/slog"

	"github.com/cano-nats/cano/internal/fsmbridge/hooks"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TaskContextParams is what [NewTaskContext] builds a task context from.
type TaskContextParams struct {
	// Cmd is the command being run.
	Cmd *protocol.TaskCommand
	// Attempt counts from 1; MaxAttempts is the policy's limit.
	Attempt, MaxAttempts int
	// Logger is the task's logger; nil discards.
	Logger *slog.Logger
	// Branches reads the outcomes of the split a join state follows; nil
	// outside a join state.
	Branches func(ctx context.Context) ([]fsm.BranchOutcome, error)
	// LoadInput, if set, makes Input and RawInput read the run's input
	// with it, once, on first use (an input left in the run record).
	LoadInput func(ctx context.Context) ([]byte, protocol.InputFormat, error)
	// LoadPrevious, if set, makes Previous read the previous state's
	// output with it, once, on first use.
	LoadPrevious func(ctx context.Context) ([]byte, error)
}

// NewTaskContext builds the context an attempt of p.Cmd runs with.
// Resources and Store are left for the caller to set.
func NewTaskContext(p TaskContextParams) *fsm.TaskContext {
	h := hooks.TaskContext{Cmd: p.Cmd, Attempt: p.Attempt, MaxAttempts: p.MaxAttempts, Logger: p.Logger,
		LoadInput: p.LoadInput, LoadPrevious: p.LoadPrevious}
	if p.Branches != nil {
		h.Branches = p.Branches
	}
	return hooks.NewTaskContext(h).(*fsm.TaskContext)
}

// BuildTask rebuilds the task a command's spec names from reg, decoding its
// parameters behind the structure check. An unregistered kind gives an
// error matching [fsm.ErrUnknownKind]; bad parameters, one matching
// [fsm.ErrConfiguration].
func BuildTask(reg *fsm.Registry, spec *protocol.TaskSpec) (fsm.Task, error) {
	t, err := hooks.BuildTask(reg, spec)
	if err != nil {
		return nil, err
	}
	return t.(fsm.Task), nil
}

// SplitSpec returns the wire spec of res's dynamic split ([fsm.SplitInto]),
// or nil when res is not a split.
func SplitSpec(res fsm.Result) (*protocol.SplitSpec, error) { return hooks.SplitSpec(res) }

// ErrorInfo converts err to its wire form, keeping category, message,
// attempts, state context and cause chain.
func ErrorInfo(err error) *protocol.ErrorInfo { return hooks.ErrorInfo(err) }

// FromErrorInfo rebuilds a typed error from its wire form: an
// [*fsm.StateError] when the info carries a state, around an
// [*fsm.RetryExhaustedError] or an [*fsm.Error] of the category.
func FromErrorInfo(info *protocol.ErrorInfo) error { return hooks.FromErrorInfo(info) }
