package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/cano-nats/cano/internal/joinrule"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// MaxTransitionsDefault caps state entries per run when the definition
// sets no cap (fsm.MaxTransitionsDefault).
const MaxTransitionsDefault = 10_000

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
	b, err := wirecodec.Encode(&c)
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
			if s.Split.Common == nil && len(s.Split.Params) > 0 {
				return nil, cfgErr("split state %q: compact branch parameters without a common task", s.Name)
			}
			// A large split of like branches is stored compact (see
			// fsm.CompactSplitMin); Len and Task read both forms.
			j := s.Split.Join
			if err := joinrule.Validate(j, s.Split.Len(), true); err != nil {
				return nil, cfgErr("split state %q: %v", s.Name, err)
			}
			if !m.Known(j.JoinState) {
				return nil, cfgErr("split state %q: join state %q is neither registered nor an exit state", s.Name, j.JoinState)
			}
			if s.Split.Common != nil {
				if err := protocol.ValidToken(s.Split.Common.Kind); err != nil {
					return nil, cfgErr("split state %q: task kind: %v", s.Name, err)
				}
			}
			for bi := range s.Split.Tasks {
				if err := protocol.ValidToken(s.Split.Tasks[bi].Kind); err != nil {
					return nil, cfgErr("split state %q branch %d: task kind: %v", s.Name, bi, err)
				}
			}
		default:
			return nil, cfgErr("state %q: unknown kind %q", s.Name, s.Kind)
		}
		if f := s.OnFailure; f != "" {
			if f == s.Name {
				return nil, cfgErr("state %q: its failures route to itself: route them to another state (a compensation), or retry with a RetryPolicy", s.Name)
			}
			if !m.Known(f) {
				return nil, cfgErr("state %q: on failure, state %q is neither registered nor an exit state", s.Name, f)
			}
			if d.V < protocol.SchemaVersion3 {
				return nil, cfgErr("state %q: a definition that routes failures must have schema version %d, got %d", s.Name, protocol.SchemaVersion3, d.V)
			}
		}
	}
	// The wire rules every coordinator checks when it reads a definition,
	// beyond the workflow rules above: one it would ignore, leaving the
	// workflow's triggers unanswered, is refused here, where it is built.
	if err := wirecodec.Validate(d); err != nil {
		return nil, cfgErr("%v", err)
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
			if s.Split.Common != nil {
				add(s.Split.Common.Kind)
			}
			for j := range s.Split.Tasks {
				add(s.Split.Tasks[j].Kind)
			}
		}
	}
	return out
}

// Registry is what CheckKinds asks of a worker's task registry (fsm.Registry).
type Registry interface {
	Has(kind string) bool
	// CheckParams reports parameters the registered task would ignore.
	CheckParams(kind string, params []byte) error
}

// CheckKinds reports the first kind of the definition that reg cannot run
// (every task kind must be known to the registering worker), and the first
// state whose parameters the task registered for its kind would ignore.
func (m *Machine) CheckKinds(reg Registry) error {
	for _, k := range m.Kinds() {
		if !reg.Has(k) {
			return fmt.Errorf("%w: workflow %q uses task kind %q, which this worker has not registered: "+
				"add the task type to the worker's registry, fsm.Register[T](reg) with T the type whose Kind() returns %q",
				ErrConfiguration, m.def.Name, k, k)
		}
	}
	for i := range m.def.States {
		s := &m.def.States[i]
		check := func(t *protocol.TaskSpec) error {
			if err := reg.CheckParams(t.Kind, t.Params); err != nil {
				return fmt.Errorf("%w: workflow %q, state %q: %w", ErrConfiguration, m.def.Name, s.Name, err)
			}
			return nil
		}
		if s.Task != nil {
			if err := check(s.Task); err != nil {
				return err
			}
		}
		if s.Split != nil {
			// Len and Task read both forms of a split, the compact one too.
			for j := range s.Split.Len() {
				t := s.Split.Task(j)
				if err := check(&t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
