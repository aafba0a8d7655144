package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Defaults for a [Workflow].
const (
	// QueueDefault is the task queue when none is set.
	QueueDefault = "default"
	// MaxTransitionsDefault caps state entries per run (cano has no cap; a
	// runaway cycle fails clearly instead of running forever).
	MaxTransitionsDefault = 10_000
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
	err            error
}

// New starts a workflow named name whose runs begin in initial unless a
// trigger names another initial state.
func New[S ~string](name string, initial S) *Workflow[S] {
	return &Workflow[S]{name: name, initial: initial, states: make(map[S]protocol.StateDef)}
}

// Name is the workflow's name.
func (w *Workflow[S]) Name() string { return w.name }

// Register makes task run in state (replacing an earlier registration, as
// cano does). An optional config overrides the task's own.
func (w *Workflow[S]) Register(state S, task Task, cfg ...TaskConfig) *Workflow[S] {
	var c *TaskConfig
	if len(cfg) > 0 {
		c = &cfg[0]
	}
	spec, err := taskSpec(task, c)
	if err != nil {
		w.fail(fmt.Errorf("%w: state %q: %v", ErrConfiguration, state, err))
		return w
	}
	w.put(state, protocol.StateDef{Name: string(state), Kind: protocol.StateSingle, Task: &spec})
	return w
}

// RegisterSplit makes state a split: tasks run in parallel as separate task
// commands on any workers, and cfg joins them.
func (w *Workflow[S]) RegisterSplit(state S, tasks []Task, cfg JoinConfig[S]) *Workflow[S] {
	split := &protocol.SplitSpec{Join: cfg.spec(), Tasks: make([]protocol.TaskSpec, len(tasks))}
	for i, t := range tasks {
		spec, err := taskSpec(t, nil)
		if err != nil {
			w.fail(fmt.Errorf("%w: split state %q branch %d: %v", ErrConfiguration, state, i, err))
			return w
		}
		split.Tasks[i] = spec
	}
	if cfg.Bulkhead < 0 {
		w.fail(fmt.Errorf("%w: split state %q: bulkhead must be at least 1 (0 means none)", ErrConfiguration, state))
	}
	w.put(state, protocol.StateDef{Name: string(state), Kind: protocol.StateSplit, Split: split})
	return w
}

// Exit adds exit states; reaching one completes the run.
func (w *Workflow[S]) Exit(states ...S) *Workflow[S] {
	for _, s := range states {
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
// from the definition's content ([ContentVersion]): change the workflow
// (its states, tasks, parameters, timeouts, anything) and redeploy, and
// workers register it as a new version, the latest; runs already started
// finish on the version they started with. An explicit version is a
// promise that its content never changes: a worker registering different
// content under a version already registered fails to start with
// worker.ErrDefinitionConflict, and the fix is a new version.
func (w *Workflow[S]) Version(v string) *Workflow[S] { w.version = v; return w }

// MaxTransitions caps state entries per run (default 10,000).
func (w *Workflow[S]) MaxTransitions(n uint32) *Workflow[S] { w.maxTransitions = n; return w }

func (w *Workflow[S]) put(state S, def protocol.StateDef) {
	if _, ok := w.states[state]; !ok {
		w.order = append(w.order, state)
	}
	w.states[state] = def
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
	_, err = Compile(d)
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
		d.States = append(d.States, w.states[s])
	}
	for _, e := range w.exits {
		d.Exits = append(d.Exits, string(e))
	}
	if d.Version == "" {
		v, err := ContentVersion(d)
		if err != nil {
			return nil, err
		}
		d.Version = v
	}
	return d, nil
}

// ContentVersionLen is the length of a version derived from content.
const ContentVersionLen = 12

// ContentVersion derives a definition's version from its content: the first
// [ContentVersionLen] hex digits of the SHA-256 of its canonical encoding
// with the version left out. Equal content gives the same version in every
// process (task parameters are encoded canonically, map keys sorted); any
// change gives another.
func ContentVersion(d *protocol.Definition) (string, error) {
	c := *d
	c.Version = ""
	b, err := protocol.Encode(&c)
	if err != nil {
		return "", fmt.Errorf("fsm: workflow %q: derive version: %w", d.Name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:ContentVersionLen], nil
}

// Machine is a compiled, validated definition: what the pure transition
// function runs on. It is immutable and safe for concurrent use.
type Machine struct {
	def            *protocol.Definition
	states         map[string]*protocol.StateDef
	exits          map[string]bool
	maxTransitions uint32
}

// Compile validates a definition and indexes it. Errors match
// [ErrConfiguration].
func Compile(d *protocol.Definition) (*Machine, error) {
	cfgErr := func(format string, args ...any) error {
		return fmt.Errorf("%w: workflow %q: %s", ErrConfiguration, d.Name, fmt.Sprintf(format, args...))
	}
	if d == nil {
		return nil, fmt.Errorf("%w: nil definition", ErrConfiguration)
	}
	if err := protocol.ValidToken(d.Name); err != nil {
		return nil, cfgErr("name: %v", err)
	}
	if err := protocol.ValidToken(d.Version); err != nil {
		return nil, cfgErr("version: %v", err)
	}
	if err := protocol.ValidToken(d.Queue); err != nil {
		return nil, cfgErr("queue: %v", err)
	}
	m := &Machine{def: d, states: make(map[string]*protocol.StateDef, len(d.States)),
		exits: make(map[string]bool, len(d.Exits)), maxTransitions: d.MaxTransitions}
	if m.maxTransitions == 0 {
		m.maxTransitions = MaxTransitionsDefault
	}
	if len(d.States) == 0 {
		return nil, cfgErr("no states registered (rule: at least one handler)")
	}
	if len(d.Exits) == 0 {
		return nil, cfgErr("no exit states (rule: at least one exit state)")
	}
	for _, e := range d.Exits {
		if e == "" {
			return nil, cfgErr("empty exit state name")
		}
		m.exits[e] = true
	}
	for i := range d.States {
		s := &d.States[i]
		if s.Name == "" || len(s.Name) > protocol.MaxNameLen {
			return nil, cfgErr("state %d: name empty or longer than %d bytes", i, protocol.MaxNameLen)
		}
		m.states[s.Name] = s
	}
	if d.Initial == "" {
		return nil, cfgErr("no initial state")
	}
	if !m.Known(d.Initial) {
		return nil, cfgErr("initial state %q is neither registered nor an exit state", d.Initial)
	}
	if d.TotalTimeout < 0 {
		return nil, cfgErr("total timeout is negative")
	}
	for i := range d.States {
		s := &d.States[i]
		switch s.Kind {
		case protocol.StateSingle:
			if s.Task == nil {
				return nil, cfgErr("state %q: no task", s.Name)
			}
			if err := protocol.ValidToken(s.Task.Kind); err != nil {
				return nil, cfgErr("state %q: task kind: %v", s.Name, err)
			}
		case protocol.StateSplit:
			if s.Split == nil {
				return nil, cfgErr("state %q: no split", s.Name)
			}
			if s.Split.Common != nil || len(s.Split.Params) > 0 {
				// Only dynamic splits travel compact; a definition lists its
				// branches (kinds are checked against the registry below).
				return nil, cfgErr("split state %q: compact branch list in a definition", s.Name)
			}
			j := s.Split.Join
			if err := join.Validate(j, len(s.Split.Tasks), true); err != nil {
				return nil, cfgErr("split state %q: %v", s.Name, err)
			}
			if !m.Known(j.JoinState) {
				return nil, cfgErr("split state %q: join state %q is neither registered nor an exit state", s.Name, j.JoinState)
			}
			for bi := range s.Split.Tasks {
				if err := protocol.ValidToken(s.Split.Tasks[bi].Kind); err != nil {
					return nil, cfgErr("split state %q branch %d: task kind: %v", s.Name, bi, err)
				}
			}
		default:
			return nil, cfgErr("state %q: unknown kind %q", s.Name, s.Kind)
		}
	}
	return m, nil
}

// Definition returns the wire definition the machine was compiled from.
func (m *Machine) Definition() *protocol.Definition { return m.def }

// Known reports whether state is registered or an exit state.
func (m *Machine) Known(state string) bool {
	_, ok := m.states[state]
	return ok || m.exits[state]
}

// IsExit reports whether state is an exit state.
func (m *Machine) IsExit(state string) bool { return m.exits[state] }

// State returns a registered state's definition, or nil.
func (m *Machine) State(name string) *protocol.StateDef { return m.states[name] }

// Kinds lists every task kind the definition uses.
func (m *Machine) Kinds() []string {
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for i := range m.def.States {
		s := &m.def.States[i]
		if s.Task != nil {
			add(s.Task.Kind)
		}
		if s.Split != nil {
			for j := range s.Split.Tasks {
				add(s.Split.Tasks[j].Kind)
			}
		}
	}
	return out
}

// CheckKinds reports the first kind of the definition that reg cannot run
// (every task kind must be known to the registering worker).
func (m *Machine) CheckKinds(reg *Registry) error {
	for _, k := range m.Kinds() {
		if !reg.Has(k) {
			return fmt.Errorf("%w: workflow %q uses task kind %q, which this worker has not registered", ErrConfiguration, m.def.Name, k)
		}
	}
	return nil
}
