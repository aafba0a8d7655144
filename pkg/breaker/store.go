package breaker

import (
	"context"
	"sync"
)

// UpdateFunc computes a breaker's next state from its current one. It
// returns write=false to leave the stored state as it is, and a non-nil
// error to abort (nothing is written). A [Store] may call it several times,
// each time with a fresher state (after a write conflict), so it must have
// no side effects beyond its return values.
//
// A next state whose Epoch differs from cur.Epoch starts a new session. The
// store may replace that epoch with its own (for the shared KV store: the KV
// revision of the write), provided epochs keep growing.
type UpdateFunc func(cur Snapshot) (next Snapshot, write bool, err error)

// Store keeps breaker states by name. A breaker never written reads as the
// zero [Snapshot] (closed) or, for a store that assigns epochs, a closed
// Snapshot with the store's first epoch. Implementations must be safe for
// concurrent use.
type Store interface {
	// Load returns the named breaker's current state. It is called on every
	// [Breaker.Acquire], so it should not do I/O in the common case.
	Load(ctx context.Context, name string) (Snapshot, error)
	// Update atomically replaces the named breaker's state with fn's result
	// and returns the state now stored (or the current one when fn declined
	// to write or failed, together with fn's error).
	Update(ctx context.Context, name string, fn UpdateFunc) (Snapshot, error)
}

var _ Store = (*LocalStore)(nil)

// LocalStore keeps breaker states in process memory, guarded by a mutex:
// cano's process-local breaker. Breakers in different processes do not share
// it. The zero value is ready to use; it is safe for concurrent use and
// never returns an error.
type LocalStore struct {
	mu sync.Mutex
	m  map[string]Snapshot // guarded by mu
}

// NewLocalStore returns an empty LocalStore.
func NewLocalStore() *LocalStore { return &LocalStore{} }

// Load implements [Store].
func (s *LocalStore) Load(_ context.Context, name string) (Snapshot, error) {
	s.mu.Lock()
	snap := s.m[name]
	s.mu.Unlock()
	snap.State = snap.phase()
	return snap, nil
}

// Update implements [Store]. fn runs once, under the store's lock.
func (s *LocalStore) Update(_ context.Context, name string, fn UpdateFunc) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.m[name]
	cur.State = cur.phase()
	next, write, err := fn(cur)
	if err != nil || !write {
		return cur, err
	}
	if s.m == nil {
		s.m = make(map[string]Snapshot)
	}
	s.m[name] = next
	return next, nil
}
