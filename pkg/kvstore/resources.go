package kvstore

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
)

// ResourcesConfig configures a [Resources]. The zero value uses the
// defaults.
type ResourcesConfig struct {
	// Logger receives teardown errors. Defaults to slog.Default().
	Logger *slog.Logger
}

// Resources is a worker's registry of [Resource]s, looked up by key with
// [Get]. It runs their lifecycle: [Resources.SetupAll] in insertion order,
// [Resources.TeardownAll] in reverse.
//
// The zero value is ready to use and logs to slog.Default(); use
// [NewResources] to choose the logger. A Resources is safe for concurrent
// use; lookups take a read lock only.
type Resources struct {
	logger *slog.Logger // nil means slog.Default(); set before use

	mu sync.RWMutex
	// guarded by mu
	order []string            // keys in insertion order
	byKey map[string]Resource // created on first insert
	setUp map[string]bool     // resources whose Setup succeeded and that are not torn down
}

// NewResources returns an empty registry configured by cfg.
func NewResources(cfg ResourcesConfig) *Resources {
	return &Resources{logger: cfg.Logger}
}

// Insert registers r under key. It panics if key is already taken or r is
// nil: that is a wiring mistake. [Resources.InsertSafely] returns the error
// instead.
func (res *Resources) Insert(key string, r Resource) {
	if err := res.InsertSafely(key, r); err != nil {
		panic(err)
	}
}

// InsertSafely registers r under key. It returns an error wrapping
// [ErrDuplicateKey] if key is already taken, and an error if r is nil.
func (res *Resources) InsertSafely(key string, r Resource) error {
	if r == nil {
		return fmt.Errorf("kvstore: resource %q is nil", key)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if _, ok := res.byKey[key]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateKey, key)
	}
	if res.byKey == nil {
		res.byKey = make(map[string]Resource)
		res.setUp = make(map[string]bool)
	}
	res.byKey[key] = r
	res.order = append(res.order, key)
	return nil
}

// Keys returns the registered keys in insertion order.
func (res *Resources) Keys() []string {
	res.mu.RLock()
	defer res.mu.RUnlock()
	return slices.Clone(res.order)
}

// Get returns the resource under key as a T. It returns an error wrapping
// [ErrResourceNotFound] when nothing is registered under key, and one
// wrapping [ErrResourceTypeMismatch] when the resource is not a T. T is
// usually the pointer type that was inserted, or an interface it
// implements. Safe for concurrent use.
func Get[T any](res *Resources, key string) (T, error) {
	var zero T
	res.mu.RLock()
	r, ok := res.byKey[key]
	res.mu.RUnlock()
	if !ok {
		return zero, fmt.Errorf("%w: %q", ErrResourceNotFound, key)
	}
	t, ok := r.(T)
	if !ok {
		return zero, fmt.Errorf("%w: %q holds %T, not %v", ErrResourceTypeMismatch, key, r, reflect.TypeFor[T]())
	}
	return t, nil
}

// SetupAll calls Setup on every resource not yet set up, one at a time, in
// insertion order. If one fails, the resources this call already set up are
// torn down in reverse order (their teardown errors are logged) and a
// [*SetupError] naming the failing key is returned. Resources set up by an
// earlier successful call stay set up.
func (res *Resources) SetupAll(ctx context.Context) error {
	type entry struct {
		key string
		r   Resource
	}
	res.mu.RLock()
	var pending []entry
	for _, k := range res.order {
		if !res.setUp[k] {
			pending = append(pending, entry{k, res.byKey[k]})
		}
	}
	res.mu.RUnlock()

	for i, e := range pending {
		if err := e.r.Setup(ctx); err != nil {
			for j := i - 1; j >= 0; j-- {
				res.teardown(ctx, pending[j].key, pending[j].r)
			}
			return &SetupError{Key: e.key, Err: err}
		}
		res.mu.Lock()
		res.setUp[e.key] = true
		res.mu.Unlock()
	}
	return nil
}

// TeardownAll calls Teardown, in reverse insertion order, on every resource
// whose Setup succeeded and that is not torn down yet. Errors are logged and
// never stop the sequence. Calling it twice is safe: the second call does
// nothing.
func (res *Resources) TeardownAll(ctx context.Context) {
	res.mu.RLock()
	var keys []string
	var rs []Resource
	for _, k := range slices.Backward(res.order) {
		if res.setUp[k] {
			keys = append(keys, k)
			rs = append(rs, res.byKey[k])
		}
	}
	res.mu.RUnlock()
	for i, k := range keys {
		res.teardown(ctx, k, rs[i])
	}
}

func (res *Resources) teardown(ctx context.Context, key string, r Resource) {
	res.mu.Lock()
	delete(res.setUp, key)
	res.mu.Unlock()
	if err := r.Teardown(ctx); err != nil {
		res.log().LogAttrs(ctx, slog.LevelError, "kvstore: resource teardown failed",
			slog.String("resource", key), slog.Any("error", err))
	}
}

func (res *Resources) log() *slog.Logger {
	if res.logger != nil {
		return res.logger
	}
	return slog.Default()
}

// CheckHealth asks every resource that implements [ResourceWithHealth] for
// its health; the others are reported healthy. Checks run one after the
// other, in insertion order. Combine the result with [Aggregate].
func (res *Resources) CheckHealth(ctx context.Context) map[string]HealthStatus {
	res.mu.RLock()
	keys := slices.Clone(res.order)
	rs := make([]Resource, len(keys))
	for i, k := range keys {
		rs[i] = res.byKey[k]
	}
	res.mu.RUnlock()
	out := make(map[string]HealthStatus, len(keys))
	for i, k := range keys {
		if h, ok := rs[i].(ResourceWithHealth); ok {
			out[k] = h.Health(ctx)
		} else {
			out[k] = Healthy()
		}
	}
	return out
}

// Health is [Aggregate] of [Resources.CheckHealth]: the worst status wins.
func (res *Resources) Health(ctx context.Context) HealthStatus {
	return Aggregate(res.CheckHealth(ctx))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
