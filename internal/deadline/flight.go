package deadline

import (
	"context"
	"sync"
	"time"
)

// Flight shares one call among concurrent callers that each wait for it
// only until their own deadline: [Flight.Do] starts the call unless one is
// in flight, and waits for that call's result until the caller's context
// ends. The call runs on a goroutine of its own, bounded by its own
// timeout rather than any caller's context, so a caller that stops
// waiting leaves it to finish, and callers never pile calls up behind one
// that blocks (a NATS request held while the connection redials). The zero
// value is ready; safe for concurrent use.
type Flight[T any] struct {
	mu  sync.Mutex
	cur *flight[T] // guarded by mu; the call in flight, nil when none
}

// flight is one call; val is set before done is closed.
type flight[T any] struct {
	done chan struct{}
	val  T
}

// Do returns the result of the call in flight, starting fn (with a context
// that ends after timeout) when none is. ok is false when ctx ended
// before the call returned.
func (f *Flight[T]) Do(ctx context.Context, timeout time.Duration, fn func(ctx context.Context) T) (val T, ok bool) {
	f.mu.Lock()
	c := f.cur
	if c == nil {
		c = &flight[T]{done: make(chan struct{})}
		f.cur = c
		go func() {
			cctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c.val = fn(cctx)
			f.mu.Lock()
			f.cur = nil
			f.mu.Unlock()
			close(c.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.val, true
	case <-ctx.Done():
		return val, false
	}
}
