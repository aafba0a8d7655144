package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/cano-nats/cano/internal/connwatch"
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

// Unwrap returns the run's view of the store, so that
// fsm.TaskContext.StoreIn can reach the other scopes (writes there are not
// the run's, and need no purge).
func (s *trackedStore) Unwrap() kvstore.Store { return s.Store }

// usedBy reports whether the store may hold writes of this task: written
// in this attempt, or in an earlier one (maybe on another worker).
func (s *trackedStore) usedBy(attempt int) bool { return s.used.Load() || attempt > 1 }

// connStore is the worker's own store (a NATS KV bucket) made to ride out a
// broker restart: a call in flight when the connection is lost ends at once
// and is sent again once the connection is back, instead of waiting out its
// whole timeout (5 s) for an answer the restarted server will never give,
// and then failing the task's attempt — long enough for a join timeout to
// fire, and an attempt spent on an outage. Get, Put, Delete and Keys repeat
// safely; Append is passed through as it is (an append whose answer was
// lost may have been written, and writing it again would add the item
// twice), and so is Watch.
type connStore struct {
	kvstore.Store
	conn *connwatch.Watch
	// timeout bounds each try when ctx has no deadline (the store's own
	// default, which it no longer applies once the try has a deadline).
	timeout time.Duration
}

// call runs op, again after each loss of the connection while op was in
// flight, until it ends otherwise or ctx does.
func (s connStore) call(ctx context.Context, op func(context.Context) error) error {
	for {
		timeout := s.timeout
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		tctx, cancel := s.conn.Bind(ctx, timeout)
		err := op(tctx)
		lost := errors.Is(context.Cause(tctx), connwatch.ErrLost)
		cancel()
		if err == nil || !lost || ctx.Err() != nil {
			return err
		}
		select {
		case <-s.conn.Connected():
		case <-ctx.Done():
			return err
		}
	}
}

func (s connStore) Get(ctx context.Context, key string) (v []byte, err error) {
	err = s.call(ctx, func(ctx context.Context) error {
		v, err = s.Store.Get(ctx, key)
		return err
	})
	return v, err
}

func (s connStore) Put(ctx context.Context, key string, value []byte) error {
	return s.call(ctx, func(ctx context.Context) error { return s.Store.Put(ctx, key, value) })
}

func (s connStore) Delete(ctx context.Context, key string) error {
	return s.call(ctx, func(ctx context.Context) error { return s.Store.Delete(ctx, key) })
}

func (s connStore) Keys(ctx context.Context, prefix string) (keys []string, err error) {
	err = s.call(ctx, func(ctx context.Context) error {
		keys, err = s.Store.Keys(ctx, prefix)
		return err
	})
	return keys, err
}
