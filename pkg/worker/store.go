package worker

import (
	"context"
	"sync/atomic"

	"github.com/cano-nats/cano/pkg/kvstore"
)

// trackedStore is the run-scoped store a task sees; it notes whether the
// task wrote to it, so the coordinator purges the scope only for runs that
// used it (no purge timer for the others).
type trackedStore struct {
	kvstore.Store
	used atomic.Bool
}

func (s *trackedStore) Put(ctx context.Context, key string, value []byte) error {
	s.used.Store(true)
	return s.Store.Put(ctx, key, value)
}

func (s *trackedStore) Append(ctx context.Context, key string, item []byte) error {
	s.used.Store(true)
	return s.Store.Append(ctx, key, item)
}

func (s *trackedStore) Delete(ctx context.Context, key string) error {
	s.used.Store(true)
	return s.Store.Delete(ctx, key)
}

// usedBy reports whether the store may hold writes of this task: written
// in this attempt, or in an earlier one (maybe on another worker).
func (s *trackedStore) usedBy(attempt int) bool { return s.used.Load() || attempt > 1 }
