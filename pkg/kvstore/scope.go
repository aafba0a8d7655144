package kvstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/cano-nats/cano/internal/kvcore"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Scope prefixes for the store's key space. Every key a [View] writes is
// its scope's prefix followed by the caller's key:
//
//	g.<key>                  global: shared by every workflow and run
//	wf.<workflow>.<key>      per workflow: shared by the runs of one workflow
//	run.<run id>.<key>       per run: removed by the coordinator after the run ends
const (
	globalPrefix   = "g."
	workflowPrefix = "wf."
	runPrefix      = "run."
)

// Scope is a part of the store's key space: global, one workflow's, or one
// run's. Build it with [GlobalScope], [WorkflowScope] or [RunScope] and
// view the store through it with [Scoped]. The zero Scope is the whole
// store, without a prefix.
type Scope struct {
	prefix string
	err    error // an invalid name; every operation of a View returns it
}

// GlobalScope is the scope shared by every workflow and run (prefix "g.").
func GlobalScope() Scope { return Scope{prefix: globalPrefix} }

// WorkflowScope is the scope of one workflow (prefix "wf.<name>."),
// shared by all its runs. name must be a valid protocol name (letters,
// digits, '-', '_'); otherwise every operation of the View returns an
// error wrapping [ErrInvalidKey].
func WorkflowScope(name string) Scope { return namedScope(workflowPrefix, "workflow", name) }

// RunScope is the scope of one run (prefix "run.<id>."): what a task gets
// through its task context. The coordinator removes it after the run ends.
// runID must be a valid protocol name; otherwise every operation of the
// View returns an error wrapping [ErrInvalidKey].
func RunScope(runID string) Scope { return namedScope(runPrefix, "run id", runID) }

func namedScope(prefix, what, name string) Scope {
	if err := protocol.ValidToken(name); err != nil {
		return Scope{err: fmt.Errorf("%w: %s scope: %w", ErrInvalidKey, what, err)}
	}
	return Scope{prefix: prefix + name + "."}
}

// Prefix returns the prefix the scope puts before every key, such as
// "run.r1.". It is "" for the zero Scope and for an invalid one.
func (sc Scope) Prefix() string { return sc.prefix }

// Err returns the error of a scope built from an invalid name, or nil.
func (sc Scope) Err() error { return sc.err }

// View is a [Store] seen through a [Scope]: keys are relative to the
// scope, so "source_1" in RunScope("r1") is "run.r1.source_1" in the
// underlying store. Keys, Watch and errors use the relative keys. A View is
// safe for concurrent use if its store is.
type View struct {
	store Store
	scope Scope
}

var _ Store = (*View)(nil)

// Scoped returns the view of store through scope. Views nest: a View of a
// View adds both prefixes.
func Scoped(store Store, scope Scope) *View {
	return &View{store: store, scope: scope}
}

// Unwrap returns the underlying store.
func (v *View) Unwrap() Store { return v.store }

// Scope returns the view's scope.
func (v *View) Scope() Scope { return v.scope }

func (v *View) key(key string) (string, error) {
	if v.scope.err != nil {
		return "", v.scope.err
	}
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return v.scope.prefix + key, nil
}

// Get implements [Store.Get].
func (v *View) Get(ctx context.Context, key string) ([]byte, error) {
	k, err := v.key(key)
	if err != nil {
		return nil, err
	}
	return v.store.Get(ctx, k)
}

// Put implements [Store.Put].
func (v *View) Put(ctx context.Context, key string, value []byte) error {
	k, err := v.key(key)
	if err != nil {
		return err
	}
	return v.store.Put(ctx, k, value)
}

// Append implements [Store.Append].
func (v *View) Append(ctx context.Context, key string, item []byte) error {
	k, err := v.key(key)
	if err != nil {
		return err
	}
	return v.store.Append(ctx, k, item)
}

// Delete implements [Store.Delete].
func (v *View) Delete(ctx context.Context, key string) error {
	k, err := v.key(key)
	if err != nil {
		return err
	}
	return v.store.Delete(ctx, k)
}

// Keys implements [Store.Keys]; the keys are relative to the scope.
func (v *View) Keys(ctx context.Context, prefix string) ([]string, error) {
	if v.scope.err != nil {
		return nil, v.scope.err
	}
	if err := kvcore.ValidatePrefix(prefix, true); err != nil {
		return nil, err
	}
	keys, err := v.store.Keys(ctx, v.scope.prefix+prefix)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		keys[i] = strings.TrimPrefix(k, v.scope.prefix)
	}
	return keys, nil
}

// Watch implements [Store.Watch]; the changes carry keys relative to the
// scope.
func (v *View) Watch(ctx context.Context, prefix string) (<-chan Change, error) {
	if v.scope.err != nil {
		return nil, v.scope.err
	}
	if err := kvcore.ValidatePrefix(prefix, true); err != nil {
		return nil, err
	}
	in, err := v.store.Watch(ctx, v.scope.prefix+prefix)
	if err != nil {
		return nil, err
	}
	if v.scope.prefix == "" {
		return in, nil
	}
	out := make(chan Change)
	go func() {
		defer close(out)
		for c := range in {
			c.Key = strings.TrimPrefix(c.Key, v.scope.prefix)
			select {
			case out <- c:
			case <-ctx.Done():
				// in is closed by the store once ctx is done.
				for range in {
				}
				return
			}
		}
	}()
	return out, nil
}
