package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// RunStatus is the lifecycle status of a run. The lifecycle diagram is in
// package fsm.
type RunStatus string

// Run statuses.
const (
	// RunScheduled: the run was triggered to start later
	// ([TriggerOpts].StartAt) and has not started; [Run].StartAt says when.
	RunScheduled RunStatus = "scheduled"
	// RunRunning: the run has started and not ended.
	RunRunning RunStatus = "running"
	// RunCompleted: the run reached an exit state.
	RunCompleted RunStatus = "completed"
	// RunFailed: a task failed for good, a join failed, or a timeout passed.
	RunFailed RunStatus = "failed"
	// RunCancelled: [Client.Cancel] ended the run.
	RunCancelled RunStatus = "cancelled"
)

// RunStatuses returns every run status, in a fresh slice.
func RunStatuses() []RunStatus {
	return []RunStatus{RunScheduled, RunRunning, RunCompleted, RunFailed, RunCancelled}
}

// Terminal reports whether s is an end status: [RunCompleted],
// [RunFailed] or [RunCancelled].
func (s RunStatus) Terminal() bool { return s == RunCompleted || s == RunFailed || s == RunCancelled }

// ErrNoValue is returned by [Run.Input], [Run.Output] and [Event.Output]
// when there is no such value to decode.
var ErrNoValue = errors.New("client: no value")

// Run is one run of a workflow, as [Client.Get], [Client.List],
// [Client.Await] and [Client.Run] return it. Times are in the local time
// zone; a zero time.Time means "not set".
//
// A Run is a snapshot: it does not change when the run moves on. It is
// safe for concurrent reads.
type Run struct {
	// ID is the run id.
	ID string
	// Workflow is the workflow's name and Version the definition version
	// the run is pinned to.
	Workflow string
	Version  string
	// Status is where the run is in its lifecycle.
	Status RunStatus
	// State is the current state (the final state once ended: an exit
	// state when completed). Step counts state entries from 0.
	State string
	Step  int
	// Path is every state entered, in order.
	Path []string
	// Err is the run's error, nil unless Status is [RunFailed] or
	// [RunCancelled]. It matches one of fsm's category sentinels
	// (fsm.ErrWorkflow, fsm.ErrRetryExhausted, fsm.ErrCancelled, ...) with
	// errors.Is, and errors.As finds an *fsm.StateError with the state,
	// attempt and path where it happened.
	Err error
	// CreatedAt is when the run was triggered (and started, unless it was
	// triggered to start later) and UpdatedAt when its record last changed
	// (when it ended, for an ended run). Deadline is when its total
	// timeout fails it; zero for no total timeout (and before a scheduled
	// run starts).
	CreatedAt time.Time
	UpdatedAt time.Time
	Deadline  time.Time
	// StartAt is when a run triggered to start later ([TriggerOpts].StartAt)
	// was to start: it is [RunScheduled] until then. Zero for a run that
	// started at its trigger.
	StartAt time.Time
	// CancelRequested is set once [Client.Cancel] asked to cancel it.
	CancelRequested bool
	// IdempotencyKey is the trigger's idempotency key, if it had one.
	IdempotencyKey string
	// Flow names the scheduler flow that started the run, "" if none, and
	// FlowSlot is the scheduled time of that fire.
	Flow     string
	FlowSlot time.Time
	// History is the run's last steps (at most 100, oldest
	// first, the current step last): state, times, attempts, worker, error
	// and split decisions. Nil on a Run built from an event (see Await).
	History []Step
	// Totals count the whole run, including steps dropped from History.
	Totals Totals

	input       []byte
	inputFormat protocol.InputFormat
	output      []byte
}

// Started reports whether the run has started: false for a
// [RunScheduled] run, and for one cancelled before its [Run].StartAt came.
// It reads the times: a run cancelled after its StartAt had passed but
// before a coordinator started it (none was running then) counts as
// started.
func (r *Run) Started() bool {
	if r.Status == RunScheduled {
		return false
	}
	return r.StartAt.IsZero() || !r.Status.Terminal() || !r.UpdatedAt.Before(r.StartAt)
}

// Input decodes the run's input into v, which must be a pointer: msgpack as
// the engine encodes values (the form [TriggerOpts].Input is sent in), or
// JSON for a run triggered with a JSON payload. It returns an error
// matching [ErrNoValue] when the run has no input, and one wrapping
// protocol.ErrMalformed when the bytes do not decode into v. A Run returned
// by [Client.Await] has no input (see there).
func (r *Run) Input(v any) error {
	if len(r.input) == 0 {
		return fmt.Errorf("%w: run %s has no input", ErrNoValue, r.ID)
	}
	if r.inputFormat == protocol.InputJSON {
		if err := json.Unmarshal(r.input, v); err != nil {
			return fmt.Errorf("client: run %s: decode the JSON input: %w", r.ID, err)
		}
		return nil
	}
	if err := wirecodec.DecodeValue(r.input, v); err != nil {
		return fmt.Errorf("client: run %s: decode the input: %w", r.ID, err)
	}
	return nil
}

// Output decodes into v (a pointer) the output of the task that moved the
// run into its current state (fsm.NextWith): for a completed run, the
// output of the task that chose the exit state. It returns an error
// matching [ErrNoValue] when that task handed nothing on (and after a
// join), and one wrapping protocol.ErrMalformed when the bytes do not
// decode into v.
func (r *Run) Output(v any) error {
	return decodeOutput(r.output, v, "run "+r.ID)
}

func decodeOutput(data []byte, v any, what string) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: %s has no output", ErrNoValue, what)
	}
	if err := wirecodec.DecodeValue(data, v); err != nil {
		return fmt.Errorf("client: %s: decode the output: %w", what, err)
	}
	return nil
}

// timeOf converts unix nanoseconds from the wire; 0 (not set) becomes the
// zero time.Time, not 1970.
func timeOf(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// runFromRecord converts a run record to a Run.
func runFromRecord(rec *protocol.RunRecord) *Run {
	return &Run{
		ID:              rec.ID,
		Workflow:        rec.Workflow,
		Version:         rec.DefVersion,
		Status:          RunStatus(rec.Status),
		State:           rec.State,
		Step:            int(rec.Step),
		Path:            rec.Path,
		Err:             fsmbridge.FromErrorInfo(rec.Error),
		CreatedAt:       timeOf(rec.CreatedAt),
		UpdatedAt:       timeOf(rec.UpdatedAt),
		Deadline:        timeOf(rec.Deadline),
		StartAt:         timeOf(rec.StartAt),
		CancelRequested: rec.CancelRequested,
		IdempotencyKey:  rec.IdempotencyKey,
		Flow:            rec.Flow,
		FlowSlot:        timeOf(rec.Slot),
		input:           rec.Input,
		inputFormat:     rec.InputFormat,
		output:          rec.Output,
		History:         stepsOf(rec.History),
		Totals: Totals{Steps: int(rec.Totals.Steps), Dropped: int(rec.Totals.Dropped), Attempts: int(rec.Totals.Attempts),
			FailedAttempts: int(rec.Totals.FailedAttempts), FailedTasks: int(rec.Totals.FailedTasks)},
	}
}

// runFromEvent converts a run's terminal event to a Run: the fields the
// event carries, UpdatedAt being the event's time.
func runFromEvent(ev *protocol.Event) *Run {
	return &Run{
		ID:        ev.RunID,
		Workflow:  ev.Workflow,
		Status:    RunStatus(ev.Status),
		State:     ev.State,
		Step:      int(ev.Step),
		Path:      ev.Path,
		Err:       fsmbridge.FromErrorInfo(ev.Error),
		UpdatedAt: timeOf(ev.Time),
		output:    ev.Output,
	}
}
