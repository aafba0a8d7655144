package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// newTaskContext builds the task context of an attempt of cmd, with a
// loader for an input or a previous output the command left in the run
// record.
func (w *Worker) newTaskContext(cmd *protocol.TaskCommand, attempt, maxAttempts int, log *slog.Logger,
	branches func(ctx context.Context) ([]fsm.BranchOutcome, error)) *fsm.TaskContext {
	p := fsmbridge.TaskContextParams{Cmd: cmd, Attempt: attempt, MaxAttempts: maxAttempts, Logger: log, Branches: branches}
	if cmd.PreviousInRecord {
		p.LoadPrevious = w.loadPrevious(cmd.RunID, cmd.Step)
	}
	if cmd.InputInRecord {
		p.LoadInput = w.loadInput(cmd.RunID)
	}
	return fsmbridge.NewTaskContext(p)
}

// loadPrevious reads the previous output a command left in the run record
// (see protocol.TaskCommand.PreviousInRecord). The record's Output is the
// output that moved the run into step; a record that has moved past step
// means this command is stale and fails permanently.
func (w *Worker) loadPrevious(runID string, step uint32) func(ctx context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		e, err := w.runs.Get(ctx, layout.RunKey(runID))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fsm.Permanent(fsm.NewError(protocol.CategoryStore, "run record %s is gone: the previous state's output cannot be read", runID))
		}
		if err != nil {
			return nil, err // retried by TaskContext.Previous
		}
		var rec protocol.RunRecord
		if err := wirecodec.Decode(e.Value(), &rec, max(w.cfg.MaxPayload, provision.MaxMsgSizeDefault)); err != nil {
			return nil, fsm.Permanent(fmt.Errorf("run record %s: %w", runID, err))
		}
		if rec.Step != step {
			return nil, fsm.Permanent(fsm.NewError(protocol.CategoryStore,
				"run %s moved on to step %d while step %d's task was reading the previous output", runID, rec.Step, step))
		}
		return rec.Output, nil
	}
}
