package fsm

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Registry maps task kinds to the code that rebuilds and runs them. A
// worker has one; it hosts exactly the kinds registered. The zero value is
// ready to use; it is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]func(params []byte) (Task, error) // guarded by mu
	// fixed holds, for each kind added by RegisterTask, the msgpack
	// parameters of the value it runs. Guarded by mu.
	fixed map[string][]byte
}

// Register adds task kind T: the worker rebuilds a T from the definition's
// msgpack parameters for each command. It panics if the kind is already
// registered or invalid; see [RegisterSafely].
func Register[T Task](r *Registry) {
	if err := RegisterSafely[T](r); err != nil {
		panic(err)
	}
}

// RegisterSafely is [Register] that returns the error.
//
// T may be a pointer type (fsm.Register[*Fetch]): each command then gets a
// pointer to a new value, never nil, and Kind is called on one. Kind must
// return a constant: it is called on the type's zero value at
// registration, and a Kind that panics there is an error.
func RegisterSafely[T Task](r *Registry) error {
	kind, err := kindOf[T]()
	if err != nil {
		return err
	}
	newT := zeroMaker[T]()
	return r.add(kind, func(params []byte) (Task, error) {
		t := newT()
		if len(params) > 0 {
			if err := wirecodec.DecodeValue(params, &t); err != nil {
				return nil, err
			}
		}
		return t, nil
	})
}

// RegisterFunc adds a kind whose tasks are built by build (for TaskFunc
// values and tasks that need wiring).
func (r *Registry) RegisterFunc(kind string, build func(params []byte) (Task, error)) error {
	return r.add(kind, build)
}

// RegisterTask adds t's kind, whose commands all run t itself: for a
// [TaskFunc], or a task value that carries its dependencies and takes no
// parameters from the definition. t runs for many commands at once, so it
// must be safe for concurrent use. A worker refuses a workflow that gives
// the kind parameters other than t's own (see [Registry.CheckParams]): for
// a task type with parameters, use [Register].
//
//	reg.RegisterTask(fsm.TaskFunc{KindName: "count", Func: count})
func (r *Registry) RegisterTask(t Task) error {
	if t == nil {
		return fmt.Errorf("fsm: RegisterTask: nil task")
	}
	if err := r.add(t.Kind(), func([]byte) (Task, error) { return t, nil }); err != nil {
		return err
	}
	if params, err := wirecodec.EncodeValue(t); err == nil {
		r.mu.Lock()
		if r.fixed == nil {
			r.fixed = make(map[string][]byte)
		}
		r.fixed[t.Kind()] = params
		r.mu.Unlock()
	}
	return nil
}

// CheckParams reports an error when kind was added by [Registry.RegisterTask]
// and params — what a workflow's definition gives a task of that kind —
// differ from the parameters of the value registered: that value runs for
// every command, so those parameters would never reach the task. A worker
// checks each workflow it hosts with it in worker.New.
func (r *Registry) CheckParams(kind string, params []byte) error {
	r.mu.RLock()
	fixed, ok := r.fixed[kind]
	r.mu.RUnlock()
	if !ok || bytes.Equal(fixed, params) {
		return nil
	}
	return fmt.Errorf("task kind %q was registered with RegisterTask, which runs the value it was given for every "+
		"command and ignores the parameters a workflow gives it (here %s): register the type with fsm.Register[T] "+
		"so that each command's parameters are decoded into it", kind, paramsText(params))
}

// paramsText shows msgpack parameters as Go prints their decoded value.
func paramsText(params []byte) string {
	var v any
	if err := wirecodec.DecodeValue(params, &v); err != nil {
		return fmt.Sprintf("%d bytes", len(params))
	}
	return fmt.Sprintf("%v", v)
}

// RegisterNode adds node kind N (cano's prep → exec → post lifecycle).
// The type arguments name the node's prep and exec result types:
//
//	fsm.RegisterNode[FetchNode, string, []byte](reg)
func RegisterNode[N Node[P, E], P, E any](r *Registry) {
	kind, err := kindOf[N]()
	if err != nil {
		panic(err)
	}
	newN := zeroMaker[N]()
	err = r.add(kind, func(params []byte) (Task, error) {
		n := newN()
		if len(params) > 0 {
			if err := wirecodec.DecodeValue(params, &n); err != nil {
				return nil, err
			}
		}
		return NodeTask[N, P, E](n), nil
	})
	if err != nil {
		panic(err)
	}
}

// zeroMaker returns what makes T's zero value or, for a pointer type, a
// pointer to a new zero value: a task registered as *T never runs on nil.
// The type is looked at once, at registration, not per command.
func zeroMaker[T any]() func() T {
	typ := reflect.TypeFor[T]()
	if typ.Kind() != reflect.Pointer {
		return func() T {
			var zero T
			return zero
		}
	}
	elem := typ.Elem()
	return func() T { return reflect.New(elem).Interface().(T) }
}

// kindOf returns the kind T's zero value (see zeroMaker) names, or an
// error when its Kind method panics.
func kindOf[T interface{ Kind() string }]() (kind string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("fsm: register %v: its Kind method panicked on the type's zero value (%v); Kind must return a constant kind name without reading the task's fields", reflect.TypeFor[T](), p)
		}
	}()
	return zeroMaker[T]()().Kind(), nil
}

func (r *Registry) add(kind string, build func([]byte) (Task, error)) error {
	if err := protocol.ValidToken(kind); err != nil {
		return fmt.Errorf("fsm: register kind: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kinds == nil {
		r.kinds = make(map[string]func([]byte) (Task, error))
	}
	if _, dup := r.kinds[kind]; dup {
		return fmt.Errorf("fsm: task kind %q registered twice", kind)
	}
	r.kinds[kind] = build
	return nil
}

// Has reports whether kind is registered.
func (r *Registry) Has(kind string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.kinds[kind]
	return ok
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrUnknownKind: a command names a task kind the worker has not
// registered.
var ErrUnknownKind = fmt.Errorf("%w: unknown task kind", ErrConfiguration)

// build rebuilds the task of a spec (the worker does this, through
// internal/fsmbridge).
func (r *Registry) build(spec *protocol.TaskSpec) (Task, error) {
	r.mu.RLock()
	build, ok := r.kinds[spec.Kind]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKind, spec.Kind)
	}
	t, err := build(spec.Params)
	if err != nil {
		return nil, fmt.Errorf("%w: task %q parameters: %v", ErrConfiguration, spec.Kind, err)
	}
	return t, nil
}

// Node is cano's structured lifecycle: Prep may read resources and fail;
// Exec does the work without resource access and cannot fail; Post decides
// the next state. A retry re-runs the whole pipeline from Prep, so all
// three must be idempotent. Register with [RegisterNode]; use in a workflow
// through [NodeTask].
type Node[P, E any] interface {
	Kind() string
	Prep(ctx context.Context, tc *TaskContext) (P, error)
	Exec(ctx context.Context, prep P) E
	Post(ctx context.Context, tc *TaskContext, exec E) (Result, error)
}

// NodeTask adapts a Node to a Task. Its parameters are the node's own.
func NodeTask[N Node[P, E], P, E any](n N) Task { return nodeTask[N, P, E]{n: n} }

type nodeTask[N Node[P, E], P, E any] struct{ n N }

func (t nodeTask[N, P, E]) Kind() string { return t.n.Kind() }

func (t nodeTask[N, P, E]) Run(ctx context.Context, tc *TaskContext) (Result, error) {
	p, err := t.n.Prep(ctx, tc)
	if err != nil {
		return Result{}, err
	}
	e := t.n.Exec(ctx, p)
	return t.n.Post(ctx, tc, e)
}

// EncodeMsgpack encodes the node itself, so a NodeTask's parameters are the node's.
func (t nodeTask[N, P, E]) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.Encode(t.n) }

// Config forwards a node's own config when it has one.
func (t nodeTask[N, P, E]) Config() TaskConfig {
	if c, ok := any(t.n).(interface{ Config() TaskConfig }); ok {
		return c.Config()
	}
	return TaskConfig{}
}
