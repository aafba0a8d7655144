package worker

import (
	"errors"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// finishing is the final outcome of a command that finish reports.
type finishing struct {
	attempts int        // attempts made (the abandoned one not counted)
	res      fsm.Result // the task's result when err is nil
	err      error      // the task's final error (nil: success)
	// storeUsed says the task may have written to the run's store scope.
	storeUsed bool
	ran       attemptSpan // the final attempt's span (zero when no attempt ran)
}

// taskResult builds and encodes the result of cmd that worker reports: a
// success whose output cannot be encoded, names no next state (outside a
// branch) or splits too wide fails the task; a result that would exceed
// maxPayload is replaced by a failure that says so. An error is an encode
// error of the result itself: the command cannot be answered.
func taskResult(cmd *protocol.TaskCommand, f *finishing, worker string, maxPayload int) (*protocol.TaskResult, []byte, error) {
	r := &protocol.TaskResult{V: protocol.SchemaVersion, RunID: cmd.RunID, Step: cmd.Step, Branch: cmd.Branch,
		Attempts: uint32(f.attempts), Worker: worker, StoreUsed: f.storeUsed,
		// The first command of a run started by a trigger request may have
		// gone out before its record: the echo lets a coordinator create
		// the record from this result (protocol.RunStart).
		Start: cmd.StartEcho()}
	if !f.ran.start.IsZero() {
		r.AttemptStarted, r.AttemptDuration = f.ran.start.UnixNano(), int64(f.ran.took)
	}
	taskErr := f.err
	if taskErr == nil {
		out, err := engine.EncodeOutput(f.res.Output())
		if err == nil {
			r.Split, err = fsmbridge.SplitSpec(f.res)
			if err == nil && r.Split != nil && r.Split.Common != nil {
				r.V = protocol.SchemaVersion2
			}
		}
		if err == nil && r.Split != nil && r.Split.Len() > engine.MaxDynamicBranchesDefault {
			taskErr = fsm.NewError(protocol.CategoryConfiguration,
				"dynamic split of %d branches exceeds the maximum of %d", r.Split.Len(), engine.MaxDynamicBranchesDefault)
		} else if err != nil {
			taskErr = fsm.Permanent(fsm.NewError(protocol.CategoryTaskExecution, "encode output: %v", err))
		} else {
			r.Status, r.Next, r.Output = protocol.ResultOK, f.res.NextState(), out
			if r.Next == "" && r.Split == nil && cmd.Branch < 0 {
				taskErr = fsm.NewError(protocol.CategoryTaskExecution, "task returned no next state")
			}
		}
	}
	if taskErr != nil {
		failResult(r, taskErr)
	}
	data, err := wirecodec.Encode(r)
	if err == nil && len(data) > maxPayload {
		// No coordinator would accept it (nor the broker, past its
		// max_payload): fail the task rather than redeliver it for ever.
		failResult(r, fsm.NewError(protocol.CategoryTaskExecution,
			"task result of %d bytes exceeds the maximum payload of %d bytes", len(data), maxPayload))
		data, err = wirecodec.Encode(r)
	}
	return r, data, err
}

// failResult makes r a failure with taskErr.
func failResult(r *protocol.TaskResult, taskErr error) {
	r.Status = protocol.ResultFailed
	r.Next, r.Output, r.Split = "", nil, nil
	info := fsmbridge.ErrorInfo(taskErr)
	if errors.As(taskErr, new(circuitOpen)) {
		info = &protocol.ErrorInfo{Category: protocol.CategoryCircuitOpen, Message: taskErr.Error()}
	}
	r.Error = info
}

// branchOutcome encodes the outcome a split branch's result r leaves in
// the branches bucket for its join (nil for a command outside a split).
func branchOutcome(cmd *protocol.TaskCommand, r *protocol.TaskResult) ([]byte, error) {
	if cmd.Branch < 0 {
		return nil, nil
	}
	bo := &protocol.BranchOutcome{V: protocol.SchemaVersion, Index: cmd.Branch, Status: protocol.BranchSucceeded, Output: r.Output}
	if r.Status == protocol.ResultFailed {
		bo.Status, bo.Error = protocol.BranchFailed, r.Error
		if r.Error.Category == protocol.CategoryTimeout || (r.Error.Cause != nil && r.Error.Cause.Category == protocol.CategoryTimeout) {
			bo.Status = protocol.BranchTimedOut
		}
	}
	return wirecodec.Encode(bo)
}
