package fsm

import (
	"fmt"
	"time"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Defaults for a [Workflow].
const (
	// QueueDefault is the task queue when none is set.
	QueueDefault = "default"
	// MaxTransitionsDefault caps state entries per run (cano has no cap; a
	// runaway cycle fails clearly instead of running forever).
	MaxTransitionsDefault = engine.MaxTransitionsDefault
)

// Workflow builds a workflow definition typed on the user's state type S
// (type OrderState string): registering a state of another type does not
// compile. The wire carries the state names.
//
//	wf := fsm.New[FlowState]("parallel_fetch", Start).
//		RegisterSplit(Start, []fsm.Task{Fetch{ID: 1}, Fetch{ID: 2}}, fsm.JoinConfig[FlowState]{
//			Strategy: join.All(), JoinState: Complete, Timeout: 5 * time.Second}).
//		Exit(Complete)
//
// Builder methods record the first mistake and [Workflow.Validate] reports it.
type Workflow[S ~string] struct {
	name           string
	version        string
	initial        S
	queue          string
	totalTimeout   time.Duration
	maxTransitions uint32
	order          []S
	states         map[S]protocol.StateDef
	exits          []S
	onFailure      map[S]S
	err            error
}

// New starts a workflow named name whose runs begin in initial unless a
// trigger names another initial state.
func New[S ~string](name string, initial S) *Workflow[S] {
	return &Workflow[S]{name: name, initial: initial, states: make(map[S]protocol.StateDef)}
}

// Name is the workflow's name.
func (w *Workflow[S]) Name() string { return w.name }

// Register makes task run in state. An optional config overrides the
// task's own. A state is registered once, and is not also an exit state:
// registering it again (with Register or RegisterSplit), or registering an
// exit state, fails the workflow with [ErrConfiguration] (cano replaces the
// earlier registration silently).
func (w *Workflow[S]) Register(state S, task Task, cfg ...TaskConfig) *Workflow[S] {
	var c *TaskConfig
	if len(cfg) > 0 {
		c = &cfg[0]
	}
	spec, err := registeredSpec(fmt.Sprintf("task for state %q", state), task, c)
	if err != nil {
		w.fail(fmt.Errorf("%w: %w", ErrConfiguration, err))
		return w
	}
	w.put(state, protocol.StateDef{Name: string(state), Kind: protocol.StateSingle, Task: &spec})
	return w
}

// CompactSplitMin is the branch count above which [Workflow.RegisterSplit]
// stores a split of like branches in its compact form. Splits up to it
// keep the long form, readable by every release.
const CompactSplitMin = 1000

// RegisterSplit makes state a split: tasks run in parallel as separate task
// commands on any workers, and cfg joins them.
//
// Each branch's attempt policy (retries, attempt timeout, breaker) is its
// task's own: a task type that implements [TaskWithConfig] gives it from
// Config; any other gets the zero TaskConfig (4 attempts with exponential
// backoff, no timeout, no breaker). For example, a branch with one retry
// and a 2 s attempt timeout:
//
//	func (Fetch) Config() fsm.TaskConfig {
//		return fsm.TaskConfig{Retry: fsm.RetryFixed(1, time.Second), AttemptTimeout: 2 * time.Second}
//	}
//
// A split of more than CompactSplitMin branches that differ only in their
// parameters (same kind, retry, timeout and breaker) is stored in the
// definition in a compact form, about 15 bytes a branch plus the
// parameters instead of about 140, so that 10,000 branches fit in the 1 MiB
// a stock nats-server accepts. Such a definition is read only by
// coordinators of this release or later (older ones refuse it with an
// unknown schema version instead of misreading it). A split of many
// different tasks has no compact form: past a few thousand branches it may
// exceed the server's max payload, and the worker says so on start; a
// dynamic split ([SplitInto]) is the form for large fan-outs.
func (w *Workflow[S]) RegisterSplit(state S, tasks []Task, cfg JoinConfig[S]) *Workflow[S] {
	split := &protocol.SplitSpec{Join: cfg.spec(), Tasks: make([]protocol.TaskSpec, len(tasks))}
	for i, t := range tasks {
		spec, err := registeredSpec(fmt.Sprintf("task for split state %q branch %d", state, i), t, nil)
		if err != nil {
			w.fail(fmt.Errorf("%w: %w", ErrConfiguration, err))
			return w
		}
		split.Tasks[i] = spec
	}
	if len(split.Tasks) > CompactSplitMin {
		split.Compact()
	}
	if cfg.Bulkhead < 0 {
		w.fail(fmt.Errorf("%w: split state %q: bulkhead must be at least 1 (0 means none)", ErrConfiguration, state))
	}
	w.put(state, protocol.StateDef{Name: string(state), Kind: protocol.StateSplit, Split: split})
	return w
}

// Exit adds exit states; reaching one completes the run. A registered
// state cannot also be an exit state: that fails the workflow with
// [ErrConfiguration].
func (w *Workflow[S]) Exit(states ...S) *Workflow[S] {
	for _, s := range states {
		if _, ok := w.states[s]; ok {
			w.fail(exitAndStateError(s))
		}
		dup := false
		for _, e := range w.exits {
			dup = dup || e == s
		}
		if !dup {
			w.exits = append(w.exits, s)
		}
	}
	return w
}

// TotalTimeout bounds every run (cano's with_total_timeout): when it passes
// the run fails with a workflow timeout. It is a durable timer.
func (w *Workflow[S]) TotalTimeout(d time.Duration) *Workflow[S] { w.totalTimeout = d; return w }

// Queue sets the task queue (default "default"): workers pull per queue and kind.
func (w *Workflow[S]) Queue(q string) *Workflow[S] { w.queue = q; return w }

// Version sets the definition version. Left unset, the version is derived
// from the definition's content (12 hex digits of a hash of its content): change the workflow
// (its states, tasks, parameters, timeouts, anything) and redeploy, and
// workers register it as a new version, the latest; runs already started
// finish on the version they started with. An explicit version is a
// promise that its content never changes: a worker registering different
// content under a version already registered fails to start with
// worker.ErrDefinitionConflict, and the fix is a new version.
func (w *Workflow[S]) Version(v string) *Workflow[S] { w.version = v; return w }

// OnFailure routes state's failures to another state, to compensate: when
// state's task fails for good (its retries exhausted, a permanent error,
// its attempt timeout, an open circuit breaker, a panic, a worker that died
// during its last attempt) or its split's join fails, the run moves to to
// instead of failing, and to's task reads the failure with
// [TaskContext.Failure]. A run cancelled, or past its total timeout, still
// ends at once. to may be an exit state: the run then completes there, the
// failure as its output. state must be registered, and to is not state.
//
//	fsm.New[Step]("order", Reserve).
//		Register(Reserve, ReserveStock{}).
//		Register(Charge, ChargeCard{}, fsm.TaskConfig{Retry: fsm.RetryFixed(3, time.Second)}).
//		OnFailure(Charge, Release). // a charge that fails for good releases the stock
//		Register(Release, ReleaseStock{}).
//		Exit(Shipped, Cancelled)
func (w *Workflow[S]) OnFailure(state, to S) *Workflow[S] {
	if w.onFailure == nil {
		w.onFailure = make(map[S]S)
	}
	if prev, ok := w.onFailure[state]; ok && prev != to {
		w.fail(fmt.Errorf("%w: state %q: failures routed twice (to %q and to %q): give OnFailure once per state",
			ErrConfiguration, state, prev, to))
		return w
	}
	w.onFailure[state] = to
	return w
}

// MaxTransitions caps state entries per run (default 10,000).
func (w *Workflow[S]) MaxTransitions(n uint32) *Workflow[S] { w.maxTransitions = n; return w }

func (w *Workflow[S]) put(state S, def protocol.StateDef) {
	if _, ok := w.states[state]; ok {
		w.fail(fmt.Errorf("%w: state %q registered twice: a state runs one task or one split; "+
			"give the second registration its own state", ErrConfiguration, state))
		return
	}
	for _, e := range w.exits {
		if e == state {
			w.fail(exitAndStateError(state))
			return
		}
	}
	w.order = append(w.order, state)
	w.states[state] = def
}

// exitAndStateError is the error for a state registered and also made an
// exit state.
func exitAndStateError[S ~string](state S) error {
	return fmt.Errorf("%w: state %q is both a registered state and an exit state: "+
		"an exit state completes the run without running a task; remove one of the two", ErrConfiguration, state)
}

func (w *Workflow[S]) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Validate applies cano's validate() rules and ours. Errors match
// [ErrConfiguration] and name the state and the rule broken.
func (w *Workflow[S]) Validate() error {
	d, err := w.Definition()
	if err != nil {
		return err
	}
	_, err = engine.Compile(d)
	return err
}

// Definition returns the wire definition.
func (w *Workflow[S]) Definition() (*protocol.Definition, error) {
	if w.err != nil {
		return nil, w.err
	}
	d := &protocol.Definition{
		V:              protocol.SchemaVersion,
		Name:           w.name,
		Version:        w.version,
		Initial:        string(w.initial),
		TotalTimeout:   int64(w.totalTimeout),
		Queue:          w.queue,
		MaxTransitions: w.maxTransitions,
	}
	if d.Queue == "" {
		d.Queue = QueueDefault
	}
	for _, s := range w.order {
		st := w.states[s]
		if st.Split != nil && st.Split.Common != nil {
			// Older builds must refuse a compact split, not misread it.
			d.V = max(d.V, protocol.SchemaVersion2)
		}
		if to, ok := w.onFailure[s]; ok {
			// Older builds must refuse routed failures, not fail the run.
			st.OnFailure = string(to)
			d.V = protocol.SchemaVersion3
		}
		d.States = append(d.States, st)
	}
	for s := range w.onFailure {
		if _, ok := w.states[s]; !ok {
			return nil, fmt.Errorf("%w: OnFailure(%q, …): state %q is not registered: register its task or split first",
				ErrConfiguration, s, s)
		}
	}
	for _, e := range w.exits {
		d.Exits = append(d.Exits, string(e))
	}
	if d.Version == "" {
		v, err := engine.ContentVersion(d)
		if err != nil {
			return nil, err
		}
		d.Version = v
	}
	return d, nil
}
