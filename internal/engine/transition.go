package engine

import (
	"fmt"
	"time"

	"github.com/cano-nats/cano/internal/joinrule"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// MaxDynamicBranchesDefault caps the branches of a dynamic split.
const MaxDynamicBranchesDefault = 100_000

// Input is one thing that happened to a run: a task result, a timer fire or
// a cancel request (exactly one is set).
type Input struct {
	Result *protocol.TaskResult
	Timer  *protocol.TimerFire
	Cancel *protocol.CancelRequest
	// DynamicSplit is the spec of the record's active dynamic split; the
	// shell loads it (from the branches bucket) when rec.Split.Dynamic.
	DynamicSplit *protocol.SplitSpec
}

// Effects are what a transition asks the shell to do, in order: write
// PutSplitSpec (if any), write the record with compare-and-set, then
// publish Commands, Timers, Notices and Events.
type Effects struct {
	// Changed is false when the input changed nothing (duplicate or late).
	Changed  bool
	Commands []protocol.TaskCommand
	Timers   []protocol.TimerFire
	// Unschedule are timers this step made moot, scheduled earlier: the
	// shell may remove them from the timers stream (best effort; one that
	// stays fires and changes nothing).
	Unschedule []protocol.TimerFire
	Notices    []protocol.CancelNotice
	Events     []protocol.Event
	// PutSplitSpec is a dynamic split's spec, stored outside the record.
	PutSplitSpec *protocol.SplitSpec
	// Ended is true when the run reached a terminal status in this step.
	Ended bool
}

// ErrNeedSplitSpec is returned when a transition needs the active dynamic
// split's spec and the input does not carry it.
var ErrNeedSplitSpec = fmt.Errorf("%w: dynamic split spec not loaded", ErrWorkflow)

// Start creates the record of a new run from a trigger. An unknown initial
// state is refused with an error matching [ErrConfiguration]: no run is
// created. An initial exit state completes the run at once.
func Start(m *Machine, trig *protocol.Trigger, runID string, now time.Time) (*protocol.RunRecord, Effects, error) {
	s0 := trig.InitialState
	if s0 == "" {
		s0 = m.def.Initial
	}
	if !m.Known(s0) {
		return nil, Effects{}, fmt.Errorf("%w: workflow %q: initial state %q is neither registered nor an exit state",
			ErrConfiguration, m.def.Name, s0)
	}
	ts := now.UnixNano()
	rec := &protocol.RunRecord{
		V: protocol.SchemaVersion, ID: runID, Workflow: m.def.Name, DefVersion: m.def.Version,
		Status: protocol.RunRunning, State: s0, Step: 0, Path: []string{s0},
		Input: trig.Input, InputFormat: trig.InputFormat, CreatedAt: ts, UpdatedAt: ts,
		IdempotencyKey: trig.IdempotencyKey, Flow: trig.Flow, Slot: trig.Slot,
	}
	t := tx{m: m, rec: rec, now: now}
	t.fx.Changed = true
	if trig.StartAt > ts {
		// A run that starts later: created now, started by its start timer.
		rec.Status, rec.StartAt = protocol.RunScheduled, trig.StartAt
		t.event(protocol.EventScheduled, "starts at "+time.Unix(0, trig.StartAt).UTC().Format(time.RFC3339Nano))
		t.fx.Timers = append(t.fx.Timers, startTimer(rec))
		return rec, t.fx, nil
	}
	t.begin()
	t.dropMootTimers()
	return rec, t.fx, nil
}

// begin starts the run: its started event, its total timeout (counted
// from now) and its initial state.
func (t *tx) begin() {
	rec := t.rec
	detail := ""
	switch now := t.now.UnixNano(); {
	case rec.StartAt > now:
		// Started ahead of its time (client.StartNow): its start is now.
		detail = "ahead of its schedule for " + time.Unix(0, rec.StartAt).UTC().Format(time.RFC3339Nano)
		rec.StartAt = now
	case rec.StartAt != 0:
		detail = "as scheduled for " + time.Unix(0, rec.StartAt).UTC().Format(time.RFC3339Nano)
	}
	t.event(protocol.EventStarted, detail)
	if t.m.def.TotalTimeout > 0 {
		rec.Deadline = t.now.UnixNano() + t.m.def.TotalTimeout
		t.fx.Timers = append(t.fx.Timers, protocol.TimerFire{V: protocol.SchemaVersion,
			Kind: protocol.TimerRunDeadline, RunID: rec.ID, At: rec.Deadline})
	}
	t.dispatchState(false)
}

// startTimer is the timer that starts a scheduled run.
func startTimer(rec *protocol.RunRecord) protocol.TimerFire {
	return protocol.TimerFire{V: protocol.SchemaVersion, Kind: protocol.TimerStart, RunID: rec.ID, At: rec.StartAt}
}

// ErrNoDefinition is returned by [Apply], given no machine, for an input
// that needs the run's definition to be applied.
var ErrNoDefinition = fmt.Errorf("%w: the run's definition version is not registered", ErrConfiguration)

// Apply is the pure transition function: (definition, record, input, now)
// → (new record, effects). It never modifies rec; it returns rec itself
// when nothing changed. A duplicate or late input changes nothing.
//
// m is nil when the run's definition version is no longer registered (it
// was deleted): then a cancel still ends the run cancelled, and its total
// timeout (its deadline timer, or a result after its deadline) still ends
// it failed; any other input is refused with [ErrNoDefinition], to be
// applied once the version is registered again.
func Apply(m *Machine, rec *protocol.RunRecord, in Input, now time.Time) (*protocol.RunRecord, Effects, error) {
	if rec.Status.Terminal() {
		return rec, Effects{}, nil
	}
	cp := *rec
	t := tx{m: m, rec: &cp, now: now, dyn: in.DynamicSplit}
	switch {
	case in.Cancel != nil:
		t.cancel(in.Cancel.Reason)
	case in.Timer != nil:
		if err := t.timer(in.Timer); err != nil {
			return rec, Effects{}, err
		}
	case in.Result != nil:
		if rec.Deadline > 0 && now.UnixNano() >= rec.Deadline {
			t.workflowTimeout()
			break
		}
		if err := t.result(in.Result); err != nil {
			return rec, Effects{}, err
		}
	}
	if !t.fx.Changed {
		return rec, Effects{}, nil
	}
	t.dropMootTimers()
	t.unscheduleMoot(rec, in.Timer)
	cp.UpdatedAt = now.UnixNano()
	return &cp, t.fx, nil
}

// dropMootTimers drops the timers this step scheduled when the step also
// ended the run (a total timeout's deadline, when the first state entered
// is an exit): an ended run needs none.
func (t *tx) dropMootTimers() {
	if t.rec.Status.Terminal() {
		t.fx.Timers = nil
	}
}

// unscheduleMoot lists in Effects.Unschedule the timers old (the record
// before this step) had scheduled that this step made moot: a scheduled
// run's start timer when it ends or starts before its start, a total
// timeout's deadline when the run ends before it, and a split's join
// timeout when the split ends before it. Left on the timers stream they
// would fire at their time and change nothing; a run with a day's total
// timeout would keep its deadline a day. fired, the timer being applied,
// is not listed when it is due: the broker fired it. One applied ahead of
// its time (client.StartNow, canotest's FireTimer) leaves its schedule
// waiting, which is moot too.
func (t *tx) unscheduleMoot(old *protocol.RunRecord, fired *protocol.TimerFire) {
	now := t.now.UnixNano()
	moot := func(tf protocol.TimerFire) {
		if fired == nil || fired.Kind != tf.Kind || fired.Step != tf.Step || fired.At > now {
			t.fx.Unschedule = append(t.fx.Unschedule, tf)
		}
	}
	if old.Status == protocol.RunScheduled && t.rec.Status != protocol.RunScheduled {
		moot(startTimer(old))
	}
	if t.rec.Status.Terminal() {
		if old.Deadline > now {
			moot(protocol.TimerFire{V: protocol.SchemaVersion, Kind: protocol.TimerRunDeadline, RunID: old.ID, At: old.Deadline})
		}
	}
	if sp := old.Split; sp != nil && sp.Join.Timeout > 0 && sp.StartedAt+sp.Join.Timeout > now &&
		(t.rec.Status.Terminal() || t.rec.Split == nil || t.rec.Step != old.Step) {
		moot(protocol.TimerFire{V: protocol.SchemaVersion, Kind: protocol.TimerJoin, RunID: old.ID, Step: old.Step,
			At: sp.StartedAt + sp.Join.Timeout})
	}
}

// Owed re-derives the commands, timers and terminal event a record owes,
// for the crash rule: a process killed between writing the record and
// publishing leaves the input un-acked; its redelivery finds the record
// already applied and re-publishes what it owes (publishes are
// de-duplicated by message id).
func Owed(m *Machine, rec *protocol.RunRecord, dyn *protocol.SplitSpec) (Effects, error) {
	t := tx{m: m, rec: rec, now: time.Unix(0, rec.UpdatedAt), dyn: dyn}
	if rec.Status.Terminal() {
		t.terminalEvent()
		return t.fx, nil
	}
	if rec.Status == protocol.RunScheduled {
		t.fx.Timers = append(t.fx.Timers, startTimer(rec))
		return t.fx, nil
	}
	if rec.Deadline > 0 {
		t.fx.Timers = append(t.fx.Timers, protocol.TimerFire{V: protocol.SchemaVersion,
			Kind: protocol.TimerRunDeadline, RunID: rec.ID, At: rec.Deadline})
	}
	if sp := rec.Split; sp != nil {
		tasks, err := t.splitTasks()
		if err != nil {
			return Effects{}, err
		}
		for i := uint32(0); i < sp.Dispatched; i++ {
			if !bit(sp.Done, i) {
				ts := tasks.Task(int(i))
				t.command(&ts, int32(i))
			}
		}
		if sp.Join.Timeout > 0 {
			t.fx.Timers = append(t.fx.Timers, protocol.TimerFire{V: protocol.SchemaVersion,
				Kind: protocol.TimerJoin, RunID: rec.ID, Step: rec.Step, At: sp.StartedAt + sp.Join.Timeout})
		}
		return t.fx, nil
	}
	if s := m.State(rec.State); s != nil && s.Task != nil {
		t.command(s.Task, -1)
	}
	return t.fx, nil
}

type tx struct {
	m   *Machine
	rec *protocol.RunRecord
	now time.Time
	dyn *protocol.SplitSpec
	fx  Effects
	// histOwned: rec.History is this transition's copy (see ownHistory).
	histOwned bool
}

func (t *tx) result(r *protocol.TaskResult) error {
	rec := t.rec
	if r.Step != rec.Step || rec.Status == protocol.RunScheduled {
		return nil // late or duplicate (a scheduled run has dispatched nothing)
	}
	if err := t.needDefinition(); err != nil {
		return err
	}
	if r.StoreUsed {
		rec.StoreUsed = true // kept only if the result changes the record
	}
	if r.Branch >= 0 {
		return t.branchResult(r)
	}
	if rec.Split != nil {
		return nil // a single result for a split step: stale
	}
	t.countResult(r)
	if r.Status == protocol.ResultFailed {
		t.leaveStep(protocol.StepFailed, r)
		t.failOrRoute(withState(r.Error, rec.State, r.Attempts, rec.Path))
		return nil
	}
	if r.Split != nil {
		return t.startDynamicSplit(r.Split, r)
	}
	t.leaveStep(protocol.StepOK, r)
	t.enter(r.Next, r.Output, nil)
	return nil
}

// enter moves the run to state. join, when non-nil, is the split the state joins.
func (t *tx) enter(state string, output []byte, joined *protocol.SplitProgress) {
	rec := t.rec
	t.fx.Changed = true
	if !t.m.Known(state) {
		// Only a task's choice can name an unknown state (initial and join
		// states are checked before): the run fails in the state whose task
		// chose it, and never enters it.
		t.fail(withState(&protocol.ErrorInfo{Category: protocol.CategoryWorkflow,
			Message: fmt.Sprintf("workflow: its task chose state %q, which the workflow does not define", state)},
			rec.State, 1, rec.Path))
		return
	}
	if uint32(len(rec.Path)) >= t.m.maxTransitions {
		t.fail(withState(&protocol.ErrorInfo{Category: protocol.CategoryWorkflow,
			Message: fmt.Sprintf("workflow: transition cap reached: %d state entries (next state %q)", t.m.maxTransitions, state)},
			rec.State, 1, rec.Path))
		return
	}
	path := make([]string, len(rec.Path), len(rec.Path)+1)
	copy(path, rec.Path)
	rec.Path = append(path, state)
	rec.State = state
	rec.Step++
	rec.Split = nil
	rec.JoinOf, rec.JoinBranches = 0, 0
	if joined != nil {
		rec.JoinOf, rec.JoinBranches = rec.Step-1, joined.Total
	}
	// The output the state's task reads with TaskContext.Previous (and the
	// run's output when state is an exit): what this transition handed on,
	// never an older state's.
	rec.Output = output
	if !t.m.IsExit(state) {
		t.event(protocol.EventState, "") // an exit is announced by the terminal event
	}
	t.dispatchState(joined != nil)
}

// dispatchState runs the current state: exit, single task, split, or
// failure. joined says a join decision entered it.
func (t *tx) dispatchState(joined bool) {
	rec := t.rec
	if t.m.IsExit(rec.State) {
		t.openStep(protocol.StepExit)
		t.leaveStep(protocol.StepOK, nil)
		rec.Status = protocol.RunCompleted
		t.terminalEvent()
		return
	}
	s := t.m.State(rec.State)
	kind := protocol.StepTask
	switch {
	case s != nil && s.Kind == protocol.StateSplit:
		kind = protocol.StepSplit
	case joined:
		kind = protocol.StepJoin
	}
	t.openStep(kind)
	if s == nil {
		prev := rec.Path[:len(rec.Path)-1]
		from := ""
		if len(prev) > 0 {
			from = prev[len(prev)-1]
		}
		t.fail(withState(&protocol.ErrorInfo{Category: protocol.CategoryWorkflow,
			Message: fmt.Sprintf("workflow: no task registered for state: %s", rec.State)}, from, 1, rec.Path))
		return
	}
	switch s.Kind {
	case protocol.StateSingle:
		t.command(s.Task, -1)
	case protocol.StateSplit:
		t.startSplit(s.Split, false)
	}
}

// startDynamicSplit starts the split a task returned (r, its result).
func (t *tx) startDynamicSplit(spec *protocol.SplitSpec, r *protocol.TaskResult) error {
	rec := t.rec
	n := spec.Len()
	bad := ""
	switch {
	case n > MaxDynamicBranchesDefault:
		bad = fmt.Sprintf("dynamic split of %d branches exceeds the maximum of %d", n, MaxDynamicBranchesDefault)
	case !t.m.Known(spec.Join.JoinState):
		bad = fmt.Sprintf("dynamic split join state %q is neither registered nor an exit state", spec.Join.JoinState)
	default:
		if err := joinrule.Validate(spec.Join, n, false); err != nil {
			bad = "dynamic split: " + err.Error()
		}
	}
	if bad != "" {
		t.leaveStep(protocol.StepFailed, r)
		t.fail(withState(&protocol.ErrorInfo{Category: protocol.CategoryConfiguration, Message: "configuration: " + bad},
			rec.State, 1, rec.Path))
		return nil
	}
	t.fx.Changed = true
	t.leaveStep(protocol.StepSplitReturned, r)
	rec.Step++
	t.openStep(protocol.StepSplit)
	t.dyn = spec
	t.fx.PutSplitSpec = spec
	t.startSplit(spec, true)
	return nil
}

func (t *tx) startSplit(spec *protocol.SplitSpec, dynamic bool) {
	rec := t.rec
	n := uint32(spec.Len())
	sp := &protocol.SplitProgress{Total: n, Done: make([]byte, (n+7)/8), Join: spec.Join,
		StartedAt: t.now.UnixNano(), Dynamic: dynamic}
	rec.Split = sp
	t.event(protocol.EventSplit, fmt.Sprintf("%d branches, %s", n, joinrule.Describe(spec.Join)))
	if n == 0 {
		t.decide(joinrule.Decide(spec.Join, joinrule.Counts{}), false)
		return
	}
	first := n
	if b := spec.Join.Bulkhead; b > 0 && b < n {
		first = b
	}
	t.fx.Commands = make([]protocol.TaskCommand, 0, first)
	for i := uint32(0); i < first; i++ {
		ts := spec.Task(int(i))
		t.command(&ts, int32(i))
	}
	sp.Dispatched = first
	if spec.Join.Timeout > 0 {
		t.fx.Timers = append(t.fx.Timers, protocol.TimerFire{V: protocol.SchemaVersion,
			Kind: protocol.TimerJoin, RunID: rec.ID, Step: rec.Step, At: sp.StartedAt + spec.Join.Timeout})
	}
}

func (t *tx) splitTasks() (*protocol.SplitSpec, error) {
	if t.rec.Split.Dynamic {
		if t.dyn == nil {
			return nil, ErrNeedSplitSpec
		}
		return t.dyn, nil
	}
	s := t.m.State(t.rec.State)
	if s == nil || s.Split == nil {
		return nil, fmt.Errorf("%w: state %q is not a split", ErrWorkflow, t.rec.State)
	}
	return s.Split, nil
}

func (t *tx) branchResult(r *protocol.TaskResult) error {
	rec := t.rec
	old := rec.Split
	if old == nil || uint32(r.Branch) >= old.Total || bit(old.Done, uint32(r.Branch)) {
		return nil // late, invalid, or counted already
	}
	tasks, err := t.splitTasks()
	if err != nil {
		return err
	}
	t.fx.Changed = true
	t.countResult(r)
	sp := *old
	sp.Done = append([]byte(nil), old.Done...)
	setBit(sp.Done, uint32(r.Branch))
	if r.Status == protocol.ResultOK {
		sp.Succeeded++
	} else {
		sp.Failed++
		if isTimeout(r.Error) {
			sp.TimedOut++
		}
		if len(sp.Errors) < 3 {
			sp.Errors = append(sp.Errors[:len(sp.Errors):len(sp.Errors)], protocol.BranchError{Index: r.Branch, Error: r.Error})
		}
	}
	rec.Split = &sp
	d := joinrule.Decide(sp.Join, counts(&sp))
	if d == joinrule.Pending {
		if sp.Dispatched < sp.Total {
			ts := tasks.Task(int(sp.Dispatched))
			t.command(&ts, int32(sp.Dispatched))
			sp.Dispatched++
		}
		return nil
	}
	t.decide(d, false)
	return nil
}

func counts(sp *protocol.SplitProgress) joinrule.Counts {
	return joinrule.Counts{Total: sp.Total, Succeeded: sp.Succeeded, Failed: sp.Failed}
}

// decide acts on a join decision: enter the join state or fail the run, and
// cancel the branches still queued or running.
func (t *tx) decide(d joinrule.Decision, timedOut bool) {
	rec := t.rec
	sp := rec.Split
	c := counts(sp)
	if c.Done() < sp.Dispatched || sp.Dispatched < sp.Total {
		t.fx.Notices = append(t.fx.Notices, protocol.CancelNotice{V: protocol.SchemaVersion,
			RunID: rec.ID, Step: rec.Step, Branch: -1, Reason: "join decided"})
	}
	t.event(protocol.EventJoin, fmt.Sprintf("%s: %s, %d/%d succeeded, %d failed", joinrule.Describe(sp.Join), d, c.Succeeded, c.Total, c.Failed))
	outcome := protocol.StepFailed
	if d == joinrule.Satisfied {
		outcome = protocol.StepOK
	}
	t.leaveStep(outcome, nil)
	if s := t.current(); s != nil && s.Split != nil {
		s.Split.Decision, s.Split.JoinTimeout = d.String(), timedOut
	}
	if d == joinrule.Satisfied {
		t.enter(sp.Join.JoinState, nil, sp)
		return
	}
	t.failOrRoute(withState(&protocol.ErrorInfo{Category: protocol.CategoryWorkflow,
		Message: "workflow: " + joinrule.FailureMessage(sp.Join, c, sp.Errors, timedOut)}, rec.State, 1, rec.Path))
}

// failOrRoute ends the current state with the failure info: the run moves
// to the state the definition routes its failures to (StateDef.OnFailure),
// handing the failure on as that state's input (protocol.FailureOutput), or,
// when it routes none, fails.
func (t *tx) failOrRoute(info *protocol.ErrorInfo) {
	s := t.m.State(t.rec.State)
	if s == nil || s.OnFailure == "" {
		t.fail(info)
		return
	}
	out, err := wirecodec.EncodeValue(protocol.FailureOutput{Failure: info})
	if err != nil {
		t.fail(info) // an ErrorInfo always encodes; kept for the type's sake
		return
	}
	t.endStep(protocol.StepFailed, info)
	failed, n := t.rec.State, len(t.fx.Events)
	t.enter(s.OnFailure, out, nil)
	// Observers see why the run went there: the state event carries the
	// failure (an exit's terminal event does not; its output does).
	for i := n; i < len(t.fx.Events); i++ {
		if ev := &t.fx.Events[i]; ev.Type == protocol.EventState {
			ev.Error, ev.Detail = info, fmt.Sprintf("after state %q failed", failed)
		}
	}
}

// needDefinition returns ErrNoDefinition when the transition has no
// machine (the run's version is gone) and is about to need it.
func (t *tx) needDefinition() error {
	if t.m == nil {
		return ErrNoDefinition
	}
	return nil
}

func (t *tx) timer(f *protocol.TimerFire) error {
	rec := t.rec
	switch f.Kind {
	case protocol.TimerRunDeadline:
		if rec.Deadline != 0 && f.At == rec.Deadline {
			t.workflowTimeout()
		}
	case protocol.TimerStart:
		if rec.Status == protocol.RunScheduled && f.At == rec.StartAt {
			if err := t.needDefinition(); err != nil {
				return err
			}
			t.fx.Changed = true
			rec.Status = protocol.RunRunning
			t.begin()
		}
	case protocol.TimerJoin:
		if sp := rec.Split; sp != nil && f.Step == rec.Step && f.At == sp.StartedAt+sp.Join.Timeout {
			if err := t.needDefinition(); err != nil {
				return err
			}
			t.fx.Changed = true
			t.decide(joinrule.DecideTimeout(sp.Join, counts(sp)), true)
		}
	}
	return nil
}

func (t *tx) workflowTimeout() {
	rec := t.rec
	start := rec.CreatedAt
	switch {
	case rec.StartAt != 0 && t.m != nil:
		start = rec.Deadline - t.m.def.TotalTimeout // started later, by its start timer
	case rec.StartAt != 0:
		start = rec.StartAt // (no definition: its start timer fired at about this time)
	}
	elapsed := time.Duration(t.now.UnixNano() - start)
	limit := time.Duration(rec.Deadline - start) // a deadline is what times a run out
	t.fx.Notices = append(t.fx.Notices, protocol.CancelNotice{V: protocol.SchemaVersion, RunID: rec.ID, Branch: -1, All: true, Reason: "workflow timeout"})
	t.fail(withState(&protocol.ErrorInfo{Category: protocol.CategoryWorkflowTimeout,
		Message: fmt.Sprintf("workflow_timeout: workflow exceeded its total timeout: elapsed %s, limit %s", elapsed.Round(time.Millisecond), limit)},
		rec.State, 0, rec.Path))
}

func (t *tx) cancel(reason string) {
	rec := t.rec
	scheduled := rec.Status == protocol.RunScheduled
	t.fx.Changed = true
	rec.CancelRequested = true
	rec.Status = protocol.RunCancelled
	msg := "cancelled: run cancelled"
	if reason != "" {
		msg += ": " + reason
	}
	rec.Error = withState(&protocol.ErrorInfo{Category: protocol.CategoryCancelled, Message: msg}, rec.State, 0, rec.Path)
	t.endStep(protocol.StepCancelled, rec.Error)
	if scheduled {
		// Its start timer is moot (unscheduleMoot).
		t.terminalEvent()
		t.fx.Events[len(t.fx.Events)-1].Detail = "before its start" // nothing ran: no notice
		return
	}
	t.fx.Notices = append(t.fx.Notices, protocol.CancelNotice{V: protocol.SchemaVersion, RunID: rec.ID, Branch: -1, All: true, Reason: "run cancelled"})
	t.terminalEvent()
}

func (t *tx) fail(info *protocol.ErrorInfo) {
	t.endStep(protocol.StepFailed, info)
	t.fx.Changed = true
	t.rec.Status = protocol.RunFailed
	t.rec.Error = info
	t.rec.Split = nil
	t.terminalEvent()
}

func (t *tx) terminalEvent() {
	rec := t.rec
	t.fx.Ended = true
	typ := protocol.EventCompleted
	switch rec.Status {
	case protocol.RunFailed:
		typ = protocol.EventFailed
	case protocol.RunCancelled:
		typ = protocol.EventCancelled
	}
	t.fx.Events = append(t.fx.Events, protocol.Event{V: protocol.SchemaVersion, Type: typ, RunID: rec.ID,
		Workflow: rec.Workflow, State: rec.State, Step: rec.Step, Status: rec.Status, Time: t.now.UnixNano(),
		Error: rec.Error, Path: rec.Path, Output: rec.Output})
}

func (t *tx) event(typ protocol.EventType, detail string) {
	rec := t.rec
	t.fx.Events = append(t.fx.Events, protocol.Event{V: protocol.SchemaVersion, Type: typ, RunID: rec.ID,
		Workflow: rec.Workflow, State: rec.State, Step: rec.Step, Status: rec.Status, Time: t.now.UnixNano(), Detail: detail})
}

func (t *tx) command(spec *protocol.TaskSpec, branch int32) {
	rec := t.rec
	t.fx.Commands = append(t.fx.Commands, protocol.TaskCommand{
		V: protocol.SchemaVersion, RunID: rec.ID, Workflow: rec.Workflow, State: rec.State,
		Step: rec.Step, Branch: branch, Task: *spec, Deadline: rec.Deadline,
		Input: rec.Input, InputFormat: rec.InputFormat, Previous: rec.Output,
		JoinOf: rec.JoinOf, JoinBranches: rec.JoinBranches,
	})
	c := &t.fx.Commands[len(t.fx.Commands)-1]
	if len(c.Input) > protocol.InlineInputMax {
		c.Input, c.InputInRecord, c.V = nil, true, protocol.SchemaVersion2
	}
	// A large previous output stays in the record too (read on first use),
	// so a command stays small and a split's branches do not each carry it.
	// No schema bump: a build that predates Previous has no task reading it.
	if len(c.Previous) > protocol.InlineInputMax {
		c.Previous, c.PreviousInRecord = nil, true
	}
}

func bit(b []byte, i uint32) bool { return int(i/8) < len(b) && b[i/8]&(1<<(i%8)) != 0 }
func setBit(b []byte, i uint32)   { b[i/8] |= 1 << (i % 8) }
