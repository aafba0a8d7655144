package protocol

import "github.com/vmihailenco/msgpack/v5"

// StepKind says what a run history step ran.
type StepKind string

// Step kinds.
const (
	// StepTask is a single-task state.
	StepTask StepKind = "task"
	// StepJoin is a single-task state entered by a split's join decision;
	// its task may read the split's branch outcomes.
	StepJoin StepKind = "join"
	// StepSplit is a split: a split state's branches, or the branches a
	// task returned (a dynamic split, in the same state as that task).
	StepSplit StepKind = "split"
	// StepExit is an exit state: the run completed on entering it.
	StepExit StepKind = "exit"
)

// StepOutcome says how a run history step ended.
type StepOutcome string

// Step outcomes. The current step of a running run has none ("").
const (
	// StepOK: the task chose the next state, the join was satisfied, or
	// (an exit step) the run completed.
	StepOK StepOutcome = "ok"
	// StepSplitReturned: the task returned a dynamic split, which is the
	// next step.
	StepSplitReturned StepOutcome = "split"
	// StepFailed: the run failed in this step; Error says why.
	StepFailed StepOutcome = "failed"
	// StepCancelled: the run was cancelled in this step.
	StepCancelled StepOutcome = "cancelled"
)

// Step is one entry of a run's history: a state entered, how long the run
// stayed, what ran there and how it ended. Steps are written by the
// coordinator from what it sees: task results (the final outcome of each
// task command, after the worker's retries) and join decisions.
type Step struct {
	// Seq is the record's Step while the run was in this step.
	Seq   uint32   `msgpack:"seq"`
	State string   `msgpack:"state"`
	Kind  StepKind `msgpack:"kind"`
	// Entered and Left are unix nanoseconds (coordinator clock); Left is 0
	// while the run is in the step.
	Entered int64 `msgpack:"entered"`
	Left    int64 `msgpack:"left,omitempty"`
	// Outcome is how the step ended; "" while the run is in it.
	Outcome StepOutcome `msgpack:"outcome,omitempty"`
	// Attempts is the number of attempts the step's task used, as its
	// result reports them (deliveries of the command, so an attempt cut
	// short by a worker crash counts). Only the final attempt is described
	// below: an earlier attempt's error was published as a "retry" event
	// and is not kept here. 0 for split and exit steps.
	Attempts uint32 `msgpack:"attempts,omitempty"`
	// Worker is the id of the worker that made the final attempt.
	Worker string `msgpack:"worker,omitempty"`
	// AttemptStarted (unix ns, the worker's clock) is when the final
	// attempt began and AttemptDuration (ns) how long the task ran in it;
	// both 0 when no attempt ran (an open breaker, a task that could not
	// be built) or the worker predates them.
	AttemptStarted  int64 `msgpack:"attempt_started,omitempty"`
	AttemptDuration int64 `msgpack:"attempt_duration,omitempty"`
	// Error is why the step failed: category and message only (the step
	// gives the state; the message is cut to [StepErrorMax] bytes).
	Error *ErrorInfo `msgpack:"error,omitempty"`
	// Split describes a split step's branches and its join decision.
	Split *SplitSummary `msgpack:"split,omitempty"`
}

// EncodeMsgpack writes s exactly as the reflective encoder would (a map of
// the set fields in declaration order, the same bytes; TestGolden checks
// it), about four times faster: a record's whole history is encoded on
// every transition. Decoding stays reflective.
func (s Step) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 4
	for _, set := range [...]bool{s.Left != 0, s.Outcome != "", s.Attempts != 0, s.Worker != "",
		s.AttemptStarted != 0, s.AttemptDuration != 0, s.Error != nil, s.Split != nil} {
		if set {
			n++
		}
	}
	w := stepWriter{enc: enc}
	w.err = enc.EncodeMapLen(n)
	w.uint("seq", uint64(s.Seq))
	w.str("state", s.State)
	w.str("kind", string(s.Kind))
	w.int("entered", s.Entered)
	if s.Left != 0 {
		w.int("left", s.Left)
	}
	if s.Outcome != "" {
		w.str("outcome", string(s.Outcome))
	}
	if s.Attempts != 0 {
		w.uint("attempts", uint64(s.Attempts))
	}
	if s.Worker != "" {
		w.str("worker", s.Worker)
	}
	if s.AttemptStarted != 0 {
		w.int("attempt_started", s.AttemptStarted)
	}
	if s.AttemptDuration != 0 {
		w.int("attempt_duration", s.AttemptDuration)
	}
	if s.Error != nil {
		w.key("error")
		w.value(s.Error)
	}
	if s.Split != nil {
		w.key("split")
		w.value(s.Split)
	}
	return w.err
}

// stepWriter writes map entries until the first error.
type stepWriter struct {
	enc *msgpack.Encoder
	err error
}

func (w *stepWriter) key(k string) {
	if w.err == nil {
		w.err = w.enc.EncodeString(k)
	}
}

func (w *stepWriter) str(k, v string) {
	w.key(k)
	if w.err == nil {
		w.err = w.enc.EncodeString(v)
	}
}

// int and uint write compact integers, as the encoder configured by
// internal/wirecodec.Encode (UseCompactInts) does.
func (w *stepWriter) int(k string, v int64) {
	w.key(k)
	if w.err == nil {
		w.err = w.enc.EncodeInt(v)
	}
}

func (w *stepWriter) uint(k string, v uint64) {
	w.key(k)
	if w.err == nil {
		w.err = w.enc.EncodeUint(v)
	}
}

func (w *stepWriter) value(v any) {
	if w.err == nil {
		w.err = w.enc.Encode(v)
	}
}

// StepErrorMax is the longest error message a history step keeps; a longer
// one is cut and ends in "…". The run's own Error keeps the full message.
const StepErrorMax = 512

// SplitSummary is a split step's branch counts and join decision. Once
// decided, Succeeded + Failed + TimedOut + Cancelled = Total.
type SplitSummary struct {
	Strategy JoinStrategy `msgpack:"strategy"`
	// Required is how many successes the strategy needs (0 for
	// partial_timeout, which needs one completed branch by its timeout).
	Required uint32 `msgpack:"required,omitempty"`
	// Dynamic is true when a task returned the branches.
	Dynamic bool   `msgpack:"dynamic,omitempty"`
	Total   uint32 `msgpack:"total"`
	// Succeeded, Failed and TimedOut count branch results; a branch whose
	// attempt timed out counts as TimedOut, not Failed.
	Succeeded uint32 `msgpack:"succeeded,omitempty"`
	Failed    uint32 `msgpack:"failed,omitempty"`
	TimedOut  uint32 `msgpack:"timed_out,omitempty"`
	// Cancelled counts the branches without a result when the join decided
	// (they were cancelled, or never dispatched under a bulkhead).
	Cancelled uint32 `msgpack:"cancelled,omitempty"`
	// Decision is the join's decision: "satisfied" or "failed"; "" while
	// pending or when the run ended otherwise (cancelled, timed out).
	Decision string `msgpack:"decision,omitempty"`
	// JoinTimeout is true when the join's timeout made the decision.
	JoinTimeout bool `msgpack:"join_timeout,omitempty"`
}

// RunTotals are a run's counts over its whole life; unlike the history
// they are never cut.
type RunTotals struct {
	// Steps counts the steps entered (history entries made); Dropped of
	// them, the oldest, are no longer in the history.
	Steps   uint32 `msgpack:"steps,omitempty"`
	Dropped uint32 `msgpack:"dropped,omitempty"`
	// Attempts counts task attempts over every task result, split branches
	// included; FailedAttempts those that did not succeed (a result that
	// succeeded on attempt n adds n-1); FailedTasks the task results that
	// failed (after their retries).
	Attempts       uint32 `msgpack:"attempts,omitempty"`
	FailedAttempts uint32 `msgpack:"failed_attempts,omitempty"`
	FailedTasks    uint32 `msgpack:"failed_tasks,omitempty"`
}
