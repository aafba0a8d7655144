// Package fsmtest builds task contexts for unit tests of tasks: run a
// task's Run method directly, with the input, the previous state's output,
// the branch outcomes and the store it would see in a worker, and check the
// [fsm.Result] it returns (Result.NextState, Result.Output, and
// Result.Split for a dynamic split).
//
//	tc, err := fsmtest.NewTaskContext(fsmtest.Context{State: "charge", Previous: Order{Qty: 2}})
//	require.NoError(t, err)
//	res, err := Charge{}.Run(ctx, tc)
//	require.Equal(t, "ship", res.NextState())
package fsmtest

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Context is what a task sees of its run. The zero value is a first
// attempt of a task outside a split, with no input, no previous output and
// no store.
type Context struct {
	// RunID, Workflow and State name the run and the state the task runs
	// in. RunID defaults to "test-run".
	RunID, Workflow, State string
	// Step is the run's step counter.
	Step uint32
	// InBranch makes the task a split branch with index Branch; otherwise
	// TaskContext.Branch is -1.
	InBranch bool
	// Branch is the branch index when InBranch is set.
	Branch int
	// Attempt (from 1) and MaxAttempts default to 1.
	Attempt, MaxAttempts int
	// Input is the run's input, read with TaskContext.Input; it is encoded
	// as a trigger's input is. Nil: none.
	Input any
	// Previous is the output the previous state handed on with
	// fsm.NextWith, read with TaskContext.Previous. Nil: none.
	Previous any
	// Failure, when set (instead of Previous), is the failure of the
	// previous state that moved the run here (fsm.Workflow.OnFailure),
	// read with TaskContext.Failure; FailedState names that state.
	Failure     error
	FailedState string
	// Branches, when not nil, makes the task a join state: they are what
	// TaskContext.Branches returns. Encode a branch's output with
	// [EncodeOutput].
	Branches []fsm.BranchOutcome
	// Store is the run's store (kvstore.NewMemory for tests); Resources
	// the worker's resources. Both may be nil.
	Store     kvstore.Store
	Resources *kvstore.Resources
	// Logger defaults to one that discards.
	Logger *slog.Logger
}

// NewTaskContext builds the task context c describes. It fails only when
// Input or Previous cannot be encoded.
func NewTaskContext(c Context) (*fsm.TaskContext, error) {
	cmd := &protocol.TaskCommand{RunID: c.RunID, Workflow: c.Workflow, State: c.State, Step: c.Step, Branch: -1}
	if cmd.RunID == "" {
		cmd.RunID = "test-run"
	}
	if c.InBranch {
		cmd.Branch = int32(c.Branch)
	}
	var err error
	if c.Input != nil {
		if cmd.Input, err = wirecodec.EncodeValue(c.Input); err != nil {
			return nil, fmt.Errorf("fsmtest: encode Input: %w", err)
		}
	}
	if c.Previous != nil {
		if cmd.Previous, err = EncodeOutput(c.Previous); err != nil {
			return nil, fmt.Errorf("fsmtest: encode Previous: %w", err)
		}
	}
	if c.Failure != nil {
		info := fsmbridge.ErrorInfo(c.Failure)
		if c.FailedState != "" {
			info.State = c.FailedState
		}
		if cmd.Previous, err = EncodeOutput(protocol.FailureOutput{Failure: info}); err != nil {
			return nil, fmt.Errorf("fsmtest: encode Failure: %w", err)
		}
	}
	p := fsmbridge.TaskContextParams{Cmd: cmd, Attempt: max(c.Attempt, 1), MaxAttempts: max(c.MaxAttempts, 1), Logger: c.Logger}
	if c.Branches != nil {
		branches := c.Branches
		p.Branches = func(context.Context) ([]fsm.BranchOutcome, error) { return branches, nil }
	}
	tc := fsmbridge.NewTaskContext(p)
	tc.Store, tc.Resources = c.Store, c.Resources
	return tc, nil
}

// EncodeOutput encodes v as a task's output travels (the value codec), for
// a [fsm.BranchOutcome]'s Output.
func EncodeOutput(v any) ([]byte, error) { return wirecodec.EncodeValue(v) }
