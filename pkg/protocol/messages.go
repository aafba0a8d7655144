package protocol

import (
	"fmt"
)

// InputFormat names how a run input or task output is encoded.
type InputFormat string

const (
	// InputMsgpack is the default: the bytes are msgpack.
	InputMsgpack InputFormat = ""
	// InputJSON marks bytes that are JSON (triggers sent as JSON).
	InputJSON InputFormat = "json"
)

// Trigger asks the coordinators to start a run. Published on
// [Names.TriggerSubject] (stored, then handled; with a [HeaderReplyTo]
// subject the sender receives a [TriggerReply]), or sent as a core NATS
// request on [Names.RPCTriggerSubject], answered with a [TriggerReply]
// once the run is durable.
type Trigger struct {
	V            uint16 `msgpack:"v"`
	Workflow     string `msgpack:"workflow"`
	InitialState string `msgpack:"initial_state,omitempty"` // "" means the definition's initial state
	// DefVersion pins a definition version; "" means the latest registered.
	DefVersion  string      `msgpack:"def_version,omitempty"`
	Input       []byte      `msgpack:"input,omitempty"`
	InputFormat InputFormat `msgpack:"input_format,omitempty"`
	// IdempotencyKey makes a second trigger with the same key a no-op that
	// returns the first run's id.
	IdempotencyKey string `msgpack:"idempotency_key,omitempty"`
	// RunID is a caller-chosen run id; "" lets the coordinator derive one.
	// It may not be set together with IdempotencyKey (which derives the
	// run id): such a trigger is refused.
	RunID string `msgpack:"run_id,omitempty"`
	// Flow and Slot identify a scheduler fire (unix nanoseconds of the slot);
	// Epoch is the leader's fencing epoch.
	Flow  string `msgpack:"flow,omitempty"`
	Slot  int64  `msgpack:"slot,omitempty"`
	Epoch uint64 `msgpack:"epoch,omitempty"`
	// StartAt (unix nanoseconds) delays the run's start: the run is
	// created at once with status [RunScheduled] and its initial state is
	// entered at StartAt. 0, or a time already past, starts it at once. A
	// trigger that sets it is written with V = [SchemaVersion4].
	StartAt int64 `msgpack:"start_at,omitempty"`
}

func (m *Trigger) schemaVersion() uint16    { return m.V }
func (m *Trigger) maxSchemaVersion() uint16 { return SchemaVersion4 }

// validate implements [Message].
func (m *Trigger) validate() error {
	if m.Workflow == "" {
		return missing("trigger", "workflow")
	}
	if err := ValidToken(m.Workflow); err != nil {
		return badName("trigger", "workflow", err)
	}
	if m.RunID != "" {
		if err := ValidToken(m.RunID); err != nil {
			return badName("trigger", "run_id", err)
		}
	}
	if len(m.InitialState) > MaxNameLen {
		return invalid("trigger", "initial_state", "too long")
	}
	if m.StartAt < 0 {
		return invalid("trigger", "start_at", "negative")
	}
	if len(m.IdempotencyKey) > 1024 {
		return invalid("trigger", "idempotency_key", "longer than 1024 bytes")
	}
	if m.RunID != "" && m.IdempotencyKey != "" {
		// The idempotency key derives the run id: a run_id beside it would
		// be ignored, so the pair is refused rather than one half dropped.
		return invalid("trigger", "run_id", "set together with idempotency_key: send one of them "+
			"(run_id to choose the run's id, idempotency_key to make repeats start one run; "+
			"its run id comes back in the reply)")
	}
	if m.InputFormat != InputMsgpack && m.InputFormat != InputJSON {
		return invalid("trigger", "input_format", fmt.Sprintf("%q", m.InputFormat))
	}
	return nil
}

// TriggerReply answers a trigger sent with a reply subject.
type TriggerReply struct {
	V     uint16     `msgpack:"v"`
	RunID string     `msgpack:"run_id,omitempty"`
	Error *ErrorInfo `msgpack:"error,omitempty"`
	// Existing is true when the trigger matched an existing run (same id or
	// idempotency key) and started nothing.
	Existing bool `msgpack:"existing,omitempty"`
	// Retry is set with Error when the coordinator could not take the
	// request now (too many requests in flight, or a store call failed):
	// send the same request again, with the same run id, a little later.
	// A run may have started from the first request (its first command was
	// stored before the failure); the retry then answers with its id.
	Retry bool `msgpack:"retry,omitempty"`
}

func (m *TriggerReply) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *TriggerReply) validate() error {
	if m.RunID == "" && m.Error == nil {
		return missing("trigger_reply", "run_id")
	}
	return nil
}

// RetryPolicy is the wire form of a task's retry mode.
type RetryPolicy struct {
	Mode       RetryMode `msgpack:"mode"`
	MaxRetries uint32    `msgpack:"max_retries,omitempty"`
	// Delays in nanoseconds.
	BaseDelay  int64   `msgpack:"base_delay,omitempty"`
	Multiplier float64 `msgpack:"multiplier,omitempty"`
	MaxDelay   int64   `msgpack:"max_delay,omitempty"`
	Jitter     float64 `msgpack:"jitter,omitempty"`
}

// RetryMode names a retry policy on the wire.
type RetryMode string

// Retry modes.
const (
	RetryNone        RetryMode = "none"
	RetryFixed       RetryMode = "fixed"
	RetryExponential RetryMode = "exponential"
)

func (p *RetryPolicy) validate(msg string) error {
	switch p.Mode {
	case RetryNone, RetryFixed, RetryExponential:
	default:
		return invalid(msg, "retry.mode", fmt.Sprintf("%q", p.Mode))
	}
	if p.BaseDelay < 0 || p.MaxDelay < 0 {
		return invalid(msg, "retry", "negative delay")
	}
	if p.Jitter < 0 || p.Jitter > 1 || p.Jitter != p.Jitter {
		return invalid(msg, "retry.jitter", "outside [0,1]")
	}
	return nil
}

// TaskSpec is one task of a definition: its kind, its msgpack-encoded
// parameters (the task value) and its attempt policy.
type TaskSpec struct {
	Kind   string      `msgpack:"kind"`
	Params []byte      `msgpack:"params,omitempty"`
	Retry  RetryPolicy `msgpack:"retry"`
	// AttemptTimeout in nanoseconds; 0 means none.
	AttemptTimeout int64 `msgpack:"attempt_timeout,omitempty"`
	// Breaker names a shared circuit breaker; "" means none.
	Breaker string `msgpack:"breaker,omitempty"`
	// BreakerPolicy configures the named breaker when it is first created.
	BreakerPolicy *BreakerPolicy `msgpack:"breaker_policy,omitempty"`
}

func (t *TaskSpec) validate(msg string) error {
	if err := ValidToken(t.Kind); err != nil {
		return badName(msg, "kind", err)
	}
	if t.AttemptTimeout < 0 {
		return invalid(msg, "attempt_timeout", "negative")
	}
	return t.Retry.validate(msg)
}

// InlineInputMax is the largest run input a task command carries itself;
// a larger one stays in the run record (see TaskCommand.InputInRecord).
const InlineInputMax = 16 << 10

// RunStart is what a coordinator needs to write the first record of a run
// whose first command was stored before its record: a trigger request
// ([Names.RPCTriggerSubject]) publishes the command, waits for the
// broker's acknowledgement, and only then creates the record. A
// coordinator that dies between the two leaves a command and no record;
// the command's result, carrying the start back ([TaskResult].Start),
// lets any coordinator create the record (the same one, from the same
// definition, created-at and input) and go on with the run.
//
// In a [TaskCommand], Workflow, InitialState, Input and InputFormat are
// left out (they are the command's own Workflow, State, Input and
// InputFormat); in a [TaskResult] every field is set ([TaskCommand.StartEcho]).
type RunStart struct {
	Workflow     string `msgpack:"workflow,omitempty"`
	InitialState string `msgpack:"initial_state,omitempty"`
	// DefVersion is the definition version the run was started with.
	DefVersion     string      `msgpack:"def_version"`
	Input          []byte      `msgpack:"input,omitempty"`
	InputFormat    InputFormat `msgpack:"input_format,omitempty"`
	IdempotencyKey string      `msgpack:"idempotency_key,omitempty"`
	Flow           string      `msgpack:"flow,omitempty"`
	Slot           int64       `msgpack:"slot,omitempty"`
	// CreatedAt is the run's creation time (unix ns): the record is
	// rebuilt at this time, so it is the record the trigger would have
	// written.
	CreatedAt int64 `msgpack:"created_at"`
}

// validate checks a start; full says it must name the workflow and state
// (the form a result carries).
func (m *RunStart) validate(msg string, full bool) error {
	if m.CreatedAt <= 0 {
		return missing(msg, "start.created_at")
	}
	if m.DefVersion == "" {
		return missing(msg, "start.def_version")
	}
	if len(m.IdempotencyKey) > 1024 {
		return invalid(msg, "start.idempotency_key", "longer than 1024 bytes")
	}
	if m.InputFormat != InputMsgpack && m.InputFormat != InputJSON {
		return invalid(msg, "start.input_format", fmt.Sprintf("%q", m.InputFormat))
	}
	if !full {
		return nil
	}
	if err := ValidToken(m.Workflow); err != nil {
		return badName(msg, "start.workflow", err)
	}
	if m.InitialState == "" || len(m.InitialState) > MaxNameLen {
		return invalid(msg, "start.initial_state", "empty or too long")
	}
	return nil
}

// TaskCommand tells a worker to run one task attempt sequence for one step
// (and branch) of a run. Published on [Names.TaskSubject] with
// Nats-Msg-Id = <run id>/<step>/<branch> (branch -1 outside a split).
type TaskCommand struct {
	V        uint16 `msgpack:"v"`
	RunID    string `msgpack:"run_id"`
	Workflow string `msgpack:"workflow"`
	State    string `msgpack:"state"`
	Step     uint32 `msgpack:"step"`
	// Branch is the split branch index, or -1 for a single-task state.
	Branch int32    `msgpack:"branch"`
	Task   TaskSpec `msgpack:"task"`
	// Deadline is the run's total-timeout deadline (unix ns), 0 for none.
	Deadline    int64       `msgpack:"deadline,omitempty"`
	Input       []byte      `msgpack:"input,omitempty"`
	InputFormat InputFormat `msgpack:"input_format,omitempty"`
	// InputInRecord says the run's input is larger than [InlineInputMax]
	// and was left out of the command: the worker reads it from the run
	// record. (A 10,000-branch split over a large input would otherwise
	// carry the whole input 10,000 times.)
	InputInRecord bool `msgpack:"input_in_record,omitempty"`
	// Previous is the output of the task that moved the run into this
	// state (msgpack, from fsm.NextWith), for the task to read (the run
	// record's Output). Empty when that task handed nothing on, in the
	// first state and in a join state (which reads its branch outcomes).
	Previous []byte `msgpack:"previous,omitempty"`
	// PreviousInRecord says the previous output is larger than
	// [InlineInputMax] and was left out of the command, as
	// InputInRecord does for the input: the worker reads it from the run
	// record's Output when the task asks for it.
	PreviousInRecord bool `msgpack:"previous_in_record,omitempty"`
	// Path is the states entered so far (for error context).
	Path []string `msgpack:"path,omitempty"`
	// JoinOf, for a join state's task, names the split step whose branch
	// outcomes it may read, and how many branches that split had.
	JoinOf       uint32 `msgpack:"join_of,omitempty"`
	JoinBranches uint32 `msgpack:"join_branches,omitempty"`
	// Start is set on the first command of a run started by a trigger
	// request, published before the run's record is written (see
	// [RunStart]). A worker echoes it in the command's result
	// ([TaskCommand.StartEcho]); a worker that does not (a build older
	// than the field) is only a problem when the coordinator that sent the
	// command died before writing the record.
	Start *RunStart `msgpack:"start,omitempty"`
}

// StartEcho is what a worker puts in the result of c as its Start: c's
// Start completed with the fields the command carries itself, or nil when
// c has none.
func (c *TaskCommand) StartEcho() *RunStart {
	if c.Start == nil {
		return nil
	}
	s := *c.Start
	s.Workflow, s.InitialState, s.Input, s.InputFormat = c.Workflow, c.State, c.Input, c.InputFormat
	return &s
}

func (m *TaskCommand) schemaVersion() uint16    { return m.V }
func (m *TaskCommand) maxSchemaVersion() uint16 { return SchemaVersion2 }

// validate implements [Message].
func (m *TaskCommand) validate() error {
	if err := ValidToken(m.RunID); err != nil {
		return badName("task_command", "run_id", err)
	}
	if err := ValidToken(m.Workflow); err != nil {
		return badName("task_command", "workflow", err)
	}
	if m.State == "" {
		return missing("task_command", "state")
	}
	if m.Branch < -1 {
		return invalid("task_command", "branch", "below -1")
	}
	if m.Start != nil {
		if err := m.Start.validate("task_command", false); err != nil {
			return err
		}
	}
	return m.Task.validate("task_command")
}

// ResultStatus is the outcome of a task command.
type ResultStatus string

// Result statuses.
const (
	ResultOK     ResultStatus = "ok"
	ResultFailed ResultStatus = "failed"
)

// TaskResult reports the final outcome of a task command (after retries).
// Published on [Names.ResultSubject] with Nats-Msg-Id = r:<run id>/<step>/<branch>.
type TaskResult struct {
	V      uint16       `msgpack:"v"`
	RunID  string       `msgpack:"run_id"`
	Step   uint32       `msgpack:"step"`
	Branch int32        `msgpack:"branch"`
	Status ResultStatus `msgpack:"status"`
	// Next is the state the task chose (status ok, single-task states).
	Next string `msgpack:"next,omitempty"`
	// Output is the msgpack-encoded value the task returned, if any.
	Output []byte     `msgpack:"output,omitempty"`
	Error  *ErrorInfo `msgpack:"error,omitempty"`
	// Attempts is the number of attempts made.
	Attempts uint32 `msgpack:"attempts,omitempty"`
	// Split is set when the task returned a dynamic split.
	Split  *SplitSpec `msgpack:"split,omitempty"`
	Worker string     `msgpack:"worker,omitempty"`
	// StoreUsed says the task may have written to its run's store scope
	// (so the scope is purged after the run ends).
	StoreUsed bool `msgpack:"store_used,omitempty"`
	// AttemptStarted (unix ns, the worker's clock) is when the final
	// attempt began and AttemptDuration (ns) how long the task ran in it;
	// both 0 when no attempt ran (an open breaker, say). For the run
	// history (see [Step]).
	AttemptStarted  int64 `msgpack:"attempt_started,omitempty"`
	AttemptDuration int64 `msgpack:"attempt_duration,omitempty"`
	// Start echoes the command's start ([TaskCommand.StartEcho]): with
	// it, a result for a run that has no record yet creates the record
	// (see [RunStart]).
	Start *RunStart `msgpack:"start,omitempty"`
}

func (m *TaskResult) schemaVersion() uint16    { return m.V }
func (m *TaskResult) maxSchemaVersion() uint16 { return SchemaVersion2 }

// validate implements [Message].
func (m *TaskResult) validate() error {
	if err := ValidToken(m.RunID); err != nil {
		return badName("task_result", "run_id", err)
	}
	if m.Branch < -1 {
		return invalid("task_result", "branch", "below -1")
	}
	switch m.Status {
	case ResultOK:
		if m.Branch == -1 && m.Next == "" && m.Split == nil {
			return missing("task_result", "next")
		}
	case ResultFailed:
		if m.Error == nil {
			return missing("task_result", "error")
		}
	default:
		return invalid("task_result", "status", fmt.Sprintf("%q", m.Status))
	}
	if m.Split != nil {
		if err := m.Split.validate("task_result.split"); err != nil {
			return err
		}
	}
	if m.Start != nil {
		if err := m.Start.validate("task_result", true); err != nil {
			return err
		}
	}
	return nil
}

// ErrorCategory is cano's error category, kept across the wire.
type ErrorCategory string

// Error categories (cano's CanoError variants).
const (
	CategoryTaskExecution   ErrorCategory = "task_execution"
	CategoryWorkflow        ErrorCategory = "workflow"
	CategoryConfiguration   ErrorCategory = "configuration"
	CategoryRetryExhausted  ErrorCategory = "retry_exhausted"
	CategoryTimeout         ErrorCategory = "timeout"
	CategoryWorkflowTimeout ErrorCategory = "workflow_timeout"
	CategoryCancelled       ErrorCategory = "cancelled"
	CategoryCircuitOpen     ErrorCategory = "circuit_open"
	CategoryStore           ErrorCategory = "store"
	CategoryPermanent       ErrorCategory = "permanent"
)

// ErrorInfo is the wire form of an error: category, message, optional cause
// and the state context (state, attempt, path) of a run failure.
type ErrorInfo struct {
	Category ErrorCategory `msgpack:"category"`
	Message  string        `msgpack:"message"`
	Attempts uint32        `msgpack:"attempts,omitempty"`
	State    string        `msgpack:"state,omitempty"`
	Path     []string      `msgpack:"path,omitempty"`
	Cause    *ErrorInfo    `msgpack:"cause,omitempty"`
}

// RunStatus is the lifecycle status of a run.
type RunStatus string

// Run statuses. The lifecycle diagram is in package fsm (doc.go).
const (
	RunScheduled RunStatus = "scheduled" // created, to start at its StartAt
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// RunStatuses returns every run status.
func RunStatuses() []RunStatus {
	return []RunStatus{RunScheduled, RunRunning, RunCompleted, RunFailed, RunCancelled}
}

// Terminal reports whether s is an end status.
func (s RunStatus) Terminal() bool { return s == RunCompleted || s == RunFailed || s == RunCancelled }

// RunRecord is the durable state of one run, stored in the runs bucket under
// the run id. Updated only with compare-and-set on its KV revision.
type RunRecord struct {
	V          uint16    `msgpack:"v"`
	ID         string    `msgpack:"id"`
	Workflow   string    `msgpack:"workflow"`
	DefVersion string    `msgpack:"def_version"`
	Status     RunStatus `msgpack:"status"`
	// State is the current state; Step counts state entries from 0.
	State       string      `msgpack:"state"`
	Step        uint32      `msgpack:"step"`
	Path        []string    `msgpack:"path"`
	Input       []byte      `msgpack:"input,omitempty"`
	InputFormat InputFormat `msgpack:"input_format,omitempty"`
	// Output is the output of the task that moved the run into its current
	// state (fsm.NextWith; empty if it handed nothing on, and after a
	// join): the next state's task reads it, and for a completed run it is
	// the output of the task that chose the exit state.
	Output []byte     `msgpack:"output,omitempty"`
	Error  *ErrorInfo `msgpack:"error,omitempty"`
	// Times in unix nanoseconds; Deadline 0 means no total timeout.
	CreatedAt int64 `msgpack:"created_at"`
	UpdatedAt int64 `msgpack:"updated_at"`
	Deadline  int64 `msgpack:"deadline,omitempty"`
	// StartAt is when a run triggered to start later ([Trigger.StartAt])
	// was to start; 0 for a run started at its trigger. Its status is
	// [RunScheduled] until then, and its total timeout counts from the
	// start.
	StartAt int64 `msgpack:"start_at,omitempty"`
	// CancelRequested is set by a cancel request; the run ends Cancelled.
	CancelRequested bool   `msgpack:"cancel_requested,omitempty"`
	IdempotencyKey  string `msgpack:"idempotency_key,omitempty"`
	Flow            string `msgpack:"flow,omitempty"`
	Slot            int64  `msgpack:"slot,omitempty"`
	// Split is the active split of the current step, if any.
	Split *SplitProgress `msgpack:"split,omitempty"`
	// JoinOf and JoinBranches point the current (join) state at the split
	// whose branch outcomes it may read.
	JoinOf       uint32 `msgpack:"join_of,omitempty"`
	JoinBranches uint32 `msgpack:"join_branches,omitempty"`
	// StoreUsed is set once a task may have written to the run's store
	// scope; the coordinator then purges the scope after the run ends.
	StoreUsed bool `msgpack:"store_used,omitempty"`
	// History is the run's most recent steps, oldest first, the current
	// one last (at most 100, the engine's HistoryMax; older ones are dropped and counted
	// in Totals). Empty for a record written before history was kept.
	History []Step `msgpack:"history,omitempty"`
	// Totals are the run's counts over its whole life.
	Totals RunTotals `msgpack:"totals"`
}

func (m *RunRecord) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *RunRecord) validate() error {
	if err := ValidToken(m.ID); err != nil {
		return badName("run_record", "id", err)
	}
	if err := ValidToken(m.Workflow); err != nil {
		return badName("run_record", "workflow", err)
	}
	switch m.Status {
	case RunScheduled, RunRunning, RunCompleted, RunFailed, RunCancelled:
	default:
		return invalid("run_record", "status", fmt.Sprintf("%q", m.Status))
	}
	if m.State == "" {
		return missing("run_record", "state")
	}
	return nil
}

// SplitSpec describes a split's branches and join (dynamic splits carry it
// in a [TaskResult]; static splits have it in the definition).
//
// A split whose branches differ only in their parameters (a dynamic split
// over a list, typically) travels in a compact form: Common is every
// branch's task spec without parameters, Params[i] is branch i's, and Tasks
// is empty — about 20 bytes a branch instead of about 150, so a 10,000-branch
// split fits in one message. Read branches with Len and Task, which serve
// both forms.
type SplitSpec struct {
	Tasks  []TaskSpec `msgpack:"tasks"`
	Join   JoinSpec   `msgpack:"join"`
	Common *TaskSpec  `msgpack:"common,omitempty"`
	Params [][]byte   `msgpack:"params,omitempty"`
}

// Len is the number of branches.
func (s *SplitSpec) Len() int {
	if s.Common != nil {
		return len(s.Params)
	}
	return len(s.Tasks)
}

// Task returns branch i's task spec.
func (s *SplitSpec) Task(i int) TaskSpec {
	if s.Common != nil {
		t := *s.Common
		t.Params = s.Params[i]
		return t
	}
	return s.Tasks[i]
}

// Compact turns s into the compact form when it has more than one branch
// and every branch has the same task spec but for its parameters.
func (s *SplitSpec) Compact() {
	if s.Common != nil || len(s.Tasks) < 2 {
		return
	}
	first := s.Tasks[0]
	for i := 1; i < len(s.Tasks); i++ {
		if !sameButParams(&first, &s.Tasks[i]) {
			return
		}
	}
	params := make([][]byte, len(s.Tasks))
	for i := range s.Tasks {
		params[i] = s.Tasks[i].Params
	}
	first.Params = nil
	s.Common, s.Params, s.Tasks = &first, params, nil
}

func sameButParams(a, b *TaskSpec) bool {
	if a.Kind != b.Kind || a.Retry != b.Retry || a.AttemptTimeout != b.AttemptTimeout || a.Breaker != b.Breaker {
		return false
	}
	if (a.BreakerPolicy == nil) != (b.BreakerPolicy == nil) {
		return false
	}
	return a.BreakerPolicy == nil || *a.BreakerPolicy == *b.BreakerPolicy
}

func (s *SplitSpec) validate(msg string) error {
	if s.Common != nil {
		if len(s.Tasks) > 0 {
			return invalid(msg, "tasks", "set together with common")
		}
		if len(s.Params) < 2 {
			return invalid(msg, "params", "a compact split has at least two branches")
		}
		if err := s.Common.validate(msg + ".common"); err != nil {
			return err
		}
	} else if len(s.Params) > 0 {
		return invalid(msg, "params", "set without common")
	}
	for i := range s.Tasks {
		if err := s.Tasks[i].validate(fmt.Sprintf("%s.tasks[%d]", msg, i)); err != nil {
			return err
		}
	}
	return s.Join.validate(msg + ".join")
}

// JoinStrategy names a join strategy on the wire.
type JoinStrategy string

// Join strategies.
const (
	JoinAll            JoinStrategy = "all"
	JoinAny            JoinStrategy = "any"
	JoinQuorum         JoinStrategy = "quorum"
	JoinPercentage     JoinStrategy = "percentage"
	JoinPartialResults JoinStrategy = "partial_results"
	JoinPartialTimeout JoinStrategy = "partial_timeout"
)

// JoinSpec is the wire form of a join configuration.
type JoinSpec struct {
	Strategy JoinStrategy `msgpack:"strategy"`
	// N is the quorum or partial-results count; P the percentage in (0,1].
	N         uint32  `msgpack:"n,omitempty"`
	P         float64 `msgpack:"p,omitempty"`
	JoinState string  `msgpack:"join_state"`
	// Timeout in nanoseconds, 0 for none.
	Timeout int64 `msgpack:"timeout,omitempty"`
	// Bulkhead is the most branches in flight at once, 0 for no limit.
	Bulkhead uint32 `msgpack:"bulkhead,omitempty"`
}

func (j *JoinSpec) validate(msg string) error {
	switch j.Strategy {
	case JoinAll, JoinAny, JoinQuorum, JoinPartialResults:
	case JoinPercentage:
		if !(j.P > 0 && j.P <= 1) {
			return invalid(msg, "p", "percentage must be in (0,1]")
		}
	case JoinPartialTimeout:
		if j.Timeout <= 0 {
			return invalid(msg, "timeout", "partial_timeout needs a timeout")
		}
	default:
		return invalid(msg, "strategy", fmt.Sprintf("%q", j.Strategy))
	}
	if j.JoinState == "" {
		return missing(msg, "join_state")
	}
	if j.Timeout < 0 {
		return invalid(msg, "timeout", "negative")
	}
	return nil
}

// SplitProgress is the join bookkeeping of an active split, kept in the run
// record: counters make each arriving result O(1), the Done bitset counts
// each branch once.
type SplitProgress struct {
	Total      uint32 `msgpack:"total"`
	Dispatched uint32 `msgpack:"dispatched"`
	Succeeded  uint32 `msgpack:"succeeded"`
	Failed     uint32 `msgpack:"failed"`
	// Done has bit i set once branch i's result is counted.
	Done []byte `msgpack:"done"`
	// Errors keeps the first three branch errors, for the failure message.
	Errors []BranchError `msgpack:"errors,omitempty"`
	// Dynamic is true when the branches came from a task's result; their
	// specs are then stored in the branches bucket.
	Dynamic bool `msgpack:"dynamic,omitempty"`
	// Join is the join configuration in force.
	Join JoinSpec `msgpack:"join"`
	// StartedAt (unix ns) is when the split began, for the join timeout.
	StartedAt int64 `msgpack:"started_at"`
	// TimedOut counts the failed branches (of Failed) whose attempt timed
	// out, for the run history.
	TimedOut uint32 `msgpack:"timed_out,omitempty"`
}

// BranchError is one branch's failure, kept for error messages.
type BranchError struct {
	Index int32      `msgpack:"index"`
	Error *ErrorInfo `msgpack:"error"`
}

// BranchStatus is a branch's outcome as handed to the join state.
type BranchStatus string

// Branch statuses.
const (
	BranchSucceeded BranchStatus = "succeeded"
	BranchFailed    BranchStatus = "failed"
	BranchCancelled BranchStatus = "cancelled"
	BranchTimedOut  BranchStatus = "timed_out"
)

// BranchOutcome is one branch's outcome, stored in the branches bucket
// (<prefix>_branches) under <run id>.<step>.<branch> by the worker that ran
// it.
type BranchOutcome struct {
	V      uint16       `msgpack:"v"`
	Index  int32        `msgpack:"index"`
	Status BranchStatus `msgpack:"status"`
	Output []byte       `msgpack:"output,omitempty"`
	Error  *ErrorInfo   `msgpack:"error,omitempty"`
}

func (m *BranchOutcome) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *BranchOutcome) validate() error {
	switch m.Status {
	case BranchSucceeded, BranchFailed, BranchCancelled, BranchTimedOut:
	default:
		return invalid("branch_outcome", "status", fmt.Sprintf("%q", m.Status))
	}
	if m.Index < 0 {
		return invalid("branch_outcome", "index", "negative")
	}
	return nil
}

// EventType names a run lifecycle event.
type EventType string

// Event types, the last token of an event subject.
const (
	EventScheduled   EventType = "scheduled" // a run was created to start later
	EventStarted     EventType = "started"
	EventState       EventType = "state"     // a state was entered
	EventSplit       EventType = "split"     // a split began
	EventJoin        EventType = "join"      // a join decided
	EventCompleted   EventType = "completed" // terminal
	EventFailed      EventType = "failed"    // terminal
	EventCancelled   EventType = "cancelled" // terminal
	EventBreaker     EventType = "breaker"   // a breaker changed state (run id "breaker")
	EventRejected    EventType = "rejected"  // a trigger was refused
	EventTaskRetried EventType = "retry"     // a task attempt failed and will be retried
)

// Terminal reports whether events of type t end a run.
func (t EventType) Terminal() bool {
	return t == EventCompleted || t == EventFailed || t == EventCancelled
}

// Event is published on [Names.EventSubject] as a run moves. Events are for
// observers (clients awaiting runs, canoctl, dashboards, metrics); the run
// record stays the truth.
type Event struct {
	V        uint16    `msgpack:"v"`
	Type     EventType `msgpack:"type"`
	RunID    string    `msgpack:"run_id"`
	Workflow string    `msgpack:"workflow"`
	State    string    `msgpack:"state,omitempty"`
	Step     uint32    `msgpack:"step,omitempty"`
	Status   RunStatus `msgpack:"status,omitempty"`
	// Time in unix nanoseconds.
	Time  int64      `msgpack:"time"`
	Error *ErrorInfo `msgpack:"error,omitempty"`
	// Path is set on terminal events.
	Path []string `msgpack:"path,omitempty"`
	// Output is set on completed events.
	Output []byte `msgpack:"output,omitempty"`
	// Detail carries type-specific text (breaker transition, join decision).
	Detail string `msgpack:"detail,omitempty"`
}

func (m *Event) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *Event) validate() error {
	if m.Type == "" {
		return missing("event", "type")
	}
	if m.RunID == "" {
		return missing("event", "run_id")
	}
	return nil
}

// CancelRequest asks the coordinators to cancel a run. Published on
// [Names.CancelSubject].
type CancelRequest struct {
	V      uint16 `msgpack:"v"`
	RunID  string `msgpack:"run_id"`
	Reason string `msgpack:"reason,omitempty"`
}

func (m *CancelRequest) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *CancelRequest) validate() error {
	if err := ValidToken(m.RunID); err != nil {
		return badName("cancel_request", "run_id", err)
	}
	return nil
}

// CancelNotice tells workers to cancel the context of a running task.
// Branch -1 with Step 0 and All set cancels everything of the run.
type CancelNotice struct {
	V      uint16 `msgpack:"v"`
	RunID  string `msgpack:"run_id"`
	Step   uint32 `msgpack:"step"`
	Branch int32  `msgpack:"branch"`
	// All cancels every task of the run regardless of step and branch.
	All    bool   `msgpack:"all,omitempty"`
	Reason string `msgpack:"reason,omitempty"`
}

func (m *CancelNotice) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *CancelNotice) validate() error {
	if err := ValidToken(m.RunID); err != nil {
		return badName("cancel_notice", "run_id", err)
	}
	return nil
}

// TimerKind names what a durable timer fires for.
type TimerKind string

// Timer kinds.
const (
	TimerRunDeadline TimerKind = "deadline" // workflow total timeout
	TimerJoin        TimerKind = "join"     // split join timeout
	TimerPurge       TimerKind = "purge"    // remove an ended run's store scope
	TimerStart       TimerKind = "start"    // start a scheduled run
)

// TimerFire is the body of a durable timer; the server delivers it on
// [Names.TimerFireSubject] at its time.
type TimerFire struct {
	V     uint16    `msgpack:"v"`
	Kind  TimerKind `msgpack:"kind"`
	RunID string    `msgpack:"run_id"`
	Step  uint32    `msgpack:"step"`
	// At is the time it was set for (unix ns).
	At int64 `msgpack:"at"`
}

func (m *TimerFire) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *TimerFire) validate() error {
	if err := ValidToken(m.RunID); err != nil {
		return badName("timer_fire", "run_id", err)
	}
	switch m.Kind {
	case TimerRunDeadline, TimerJoin, TimerPurge, TimerStart:
	default:
		return invalid("timer_fire", "kind", fmt.Sprintf("%q", m.Kind))
	}
	return nil
}

// StateKind distinguishes single-task and split states in a definition.
type StateKind string

// State kinds.
const (
	StateSingle StateKind = "single"
	StateSplit  StateKind = "split"
)

// StateDef is one registered state of a definition.
type StateDef struct {
	Name string    `msgpack:"name"`
	Kind StateKind `msgpack:"kind"`
	// Task is set for single states; Split for split states.
	Task  *TaskSpec  `msgpack:"task,omitempty"`
	Split *SplitSpec `msgpack:"split,omitempty"`
	// OnFailure, when set, is the state a final failure of this state's
	// task (or of its split's join) moves the run to, instead of failing
	// it; that state's task reads the failure ([FailureOutput]). Set only
	// in a [SchemaVersion3] definition.
	OnFailure string `msgpack:"on_failure,omitempty"`
}

// FailureOutput is the output a failed state hands to its OnFailure state
// (fsm.TaskContext.Failure reads it): the failure, with the state it
// happened in, its attempts and the run's path.
type FailureOutput struct {
	Failure *ErrorInfo `msgpack:"cano_failure"`
}

// Definition is a workflow definition as registered by workers in the
// definitions bucket (<prefix>_definitions) under def.<name>.<version>;
// latest.<name> holds the name of its latest version.
type Definition struct {
	V       uint16 `msgpack:"v"`
	Name    string `msgpack:"name"`
	Version string `msgpack:"version"`
	// Initial is the default initial state.
	Initial string     `msgpack:"initial"`
	States  []StateDef `msgpack:"states"`
	Exits   []string   `msgpack:"exits"`
	// TotalTimeout in nanoseconds; 0 for none.
	TotalTimeout int64 `msgpack:"total_timeout,omitempty"`
	// Queue is the task queue (subject token) for this workflow's tasks.
	Queue string `msgpack:"queue"`
	// MaxTransitions caps state entries per run; 0 means the default.
	MaxTransitions uint32 `msgpack:"max_transitions,omitempty"`
}

func (m *Definition) schemaVersion() uint16    { return m.V }
func (m *Definition) maxSchemaVersion() uint16 { return SchemaVersion3 }

// validate implements [Message]. It checks the wire shape only; the
// workflow rules are fsm's Validate.
func (m *Definition) validate() error {
	if err := ValidToken(m.Name); err != nil {
		return badName("definition", "name", err)
	}
	if err := ValidToken(m.Version); err != nil {
		return badName("definition", "version", err)
	}
	if err := ValidToken(m.Queue); err != nil {
		return badName("definition", "queue", err)
	}
	for i := range m.States {
		s := &m.States[i]
		if s.Name == "" {
			return missing("definition", fmt.Sprintf("states[%d].name", i))
		}
		switch s.Kind {
		case StateSingle:
			if s.Task == nil {
				return missing("definition", fmt.Sprintf("states[%d].task", i))
			}
			if err := s.Task.validate("definition.states." + s.Name); err != nil {
				return err
			}
		case StateSplit:
			if s.Split == nil {
				return missing("definition", fmt.Sprintf("states[%d].split", i))
			}
			if err := s.Split.validate("definition.states." + s.Name); err != nil {
				return err
			}
		default:
			return invalid("definition", fmt.Sprintf("states[%d].kind", i), fmt.Sprintf("%q", s.Kind))
		}
	}
	return nil
}

// BreakerPolicy configures a circuit breaker (cano's CircuitPolicy).
type BreakerPolicy struct {
	FailureThreshold uint32 `msgpack:"failure_threshold"`
	// ResetTimeout in nanoseconds.
	ResetTimeout     int64  `msgpack:"reset_timeout"`
	HalfOpenMaxCalls uint32 `msgpack:"half_open_max_calls"`
}

// BreakerPhase is a circuit breaker's state.
type BreakerPhase string

// Breaker phases.
const (
	BreakerClosed   BreakerPhase = "closed"
	BreakerOpen     BreakerPhase = "open"
	BreakerHalfOpen BreakerPhase = "half_open"
)

// BreakerState is a shared breaker's state in the breakers bucket; the KV
// revision is its epoch.
type BreakerState struct {
	V      uint16        `msgpack:"v"`
	Name   string        `msgpack:"name"`
	Phase  BreakerPhase  `msgpack:"phase"`
	Policy BreakerPolicy `msgpack:"policy"`
	// ConsecutiveFailures counts failures while closed.
	ConsecutiveFailures uint32 `msgpack:"consecutive_failures"`
	// OpenUntil (unix ns) is when an open breaker may admit a probe.
	OpenUntil int64 `msgpack:"open_until,omitempty"`
	// HalfOpenInFlight and HalfOpenSuccesses count probes.
	HalfOpenInFlight  uint32 `msgpack:"half_open_in_flight,omitempty"`
	HalfOpenSuccesses uint32 `msgpack:"half_open_successes,omitempty"`
	// Epoch increments on every phase transition.
	Epoch     uint64 `msgpack:"epoch"`
	UpdatedAt int64  `msgpack:"updated_at"`
}

func (m *BreakerState) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *BreakerState) validate() error {
	if m.Name == "" {
		return missing("breaker_state", "name")
	}
	switch m.Phase {
	case BreakerClosed, BreakerOpen, BreakerHalfOpen:
	default:
		return invalid("breaker_state", "phase", fmt.Sprintf("%q", m.Phase))
	}
	return nil
}

// FlowKind names a scheduler flow's schedule type.
type FlowKind string

// Flow kinds.
const (
	FlowCron   FlowKind = "cron"
	FlowEvery  FlowKind = "every"
	FlowManual FlowKind = "manual"
)

// MisfirePolicy says what a cron flow does with slots missed while no leader fired.
type MisfirePolicy string

// Misfire policies.
const (
	MisfireSkip    MisfirePolicy = "skip"
	MisfireCatchUp MisfirePolicy = "catch_up"
)

// BackoffPolicy is a flow's failure backoff (cano's BackoffPolicy).
type BackoffPolicy struct {
	// Initial and MaxDelay in nanoseconds.
	Initial    int64   `msgpack:"initial"`
	Multiplier float64 `msgpack:"multiplier"`
	MaxDelay   int64   `msgpack:"max_delay"`
	Jitter     float64 `msgpack:"jitter"`
	// StreakLimit trips the flow after that many consecutive failures; 0 never trips.
	StreakLimit uint32 `msgpack:"streak_limit,omitempty"`
}

// Schedule is a scheduler flow stored in the schedules bucket.
type Schedule struct {
	V            uint16   `msgpack:"v"`
	ID           string   `msgpack:"id"`
	Kind         FlowKind `msgpack:"kind"`
	Workflow     string   `msgpack:"workflow"`
	InitialState string   `msgpack:"initial_state,omitempty"`
	Input        []byte   `msgpack:"input,omitempty"`
	// Cron is the cron expression (Kind cron); Every the interval in ns.
	Cron     string        `msgpack:"cron,omitempty"`
	Every    int64         `msgpack:"every,omitempty"`
	TimeZone string        `msgpack:"time_zone,omitempty"`
	Misfire  MisfirePolicy `msgpack:"misfire,omitempty"`
	Backoff  BackoffPolicy `msgpack:"backoff"`
	// Version changes on every update, so an updated flow's old timer stops.
	Version uint64 `msgpack:"version"`
}

func (m *Schedule) schemaVersion() uint16 { return m.V }

// validate implements [Message]. Cron syntax is checked by the scheduler.
func (m *Schedule) validate() error {
	if err := ValidToken(m.ID); err != nil {
		return badName("schedule", "id", err)
	}
	if err := ValidToken(m.Workflow); err != nil {
		return badName("schedule", "workflow", err)
	}
	switch m.Kind {
	case FlowCron:
		if m.Cron == "" {
			return missing("schedule", "cron")
		}
	case FlowEvery:
		if m.Every <= 0 {
			return invalid("schedule", "every", "must be positive")
		}
	case FlowManual:
	default:
		return invalid("schedule", "kind", fmt.Sprintf("%q", m.Kind))
	}
	switch m.Misfire {
	case "", MisfireSkip, MisfireCatchUp:
	default:
		return invalid("schedule", "misfire", fmt.Sprintf("%q", m.Misfire))
	}
	return nil
}

// FlowPhase is a flow's status (cano's scheduler Status).
type FlowPhase string

// Flow phases.
const (
	FlowIdle      FlowPhase = "idle"
	FlowRunning   FlowPhase = "running"
	FlowCompleted FlowPhase = "completed"
	FlowBackoff   FlowPhase = "backoff"
	FlowTripped   FlowPhase = "tripped"
)

// FlowStatus is a flow's persisted status (cano's FlowInfo).
type FlowStatus struct {
	V        uint16    `msgpack:"v"`
	ID       string    `msgpack:"id"`
	Phase    FlowPhase `msgpack:"phase"`
	RunCount uint64    `msgpack:"run_count"`
	// Times in unix ns; 0 means never / none.
	LastRun       int64  `msgpack:"last_run,omitempty"`
	LastSlot      int64  `msgpack:"last_slot,omitempty"`
	CurrentRun    string `msgpack:"current_run,omitempty"`
	FailureStreak uint32 `msgpack:"failure_streak"`
	NextEligible  int64  `msgpack:"next_eligible,omitempty"`
	LastError     string `msgpack:"last_error,omitempty"`
	SkippedFires  uint64 `msgpack:"skipped_fires,omitempty"`
	// PausedAt is when the flow was paused; 0 means not paused. A paused
	// flow fires nothing on its schedule; a manual trigger still runs it.
	PausedAt int64 `msgpack:"paused_at,omitempty"`
	// ResumedAt is when the flow was last resumed; cron slots at or before
	// it are not fired (no catch-up of slots missed while paused).
	ResumedAt int64 `msgpack:"resumed_at,omitempty"`
}

func (m *FlowStatus) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *FlowStatus) validate() error {
	if m.ID == "" {
		return missing("flow_status", "id")
	}
	switch m.Phase {
	case FlowIdle, FlowRunning, FlowCompleted, FlowBackoff, FlowTripped:
	default:
		return invalid("flow_status", "phase", fmt.Sprintf("%q", m.Phase))
	}
	return nil
}

// DeadLetter wraps a refused message in the dead-letter stream.
type DeadLetter struct {
	V       uint16 `msgpack:"v"`
	Source  string `msgpack:"source"`
	Subject string `msgpack:"subject"`
	Reason  string `msgpack:"reason"`
	// Category is the typed error's category when one applies.
	Category string            `msgpack:"category,omitempty"`
	Headers  map[string]string `msgpack:"headers,omitempty"`
	Data     []byte            `msgpack:"data"`
	Time     int64             `msgpack:"time"`
}

func (m *DeadLetter) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *DeadLetter) validate() error {
	if m.Reason == "" {
		return missing("dead_letter", "reason")
	}
	return nil
}

// SplitSpecRecord stores a dynamic split's spec in the branches bucket
// (<prefix>_branches) under <run id>.<step>.spec.
type SplitSpecRecord struct {
	V    uint16    `msgpack:"v"`
	Spec SplitSpec `msgpack:"spec"`
}

func (m *SplitSpecRecord) schemaVersion() uint16    { return m.V }
func (m *SplitSpecRecord) maxSchemaVersion() uint16 { return SchemaVersion2 }

// validate implements [Message].
func (m *SplitSpecRecord) validate() error { return m.Spec.validate("split_spec_record.spec") }
