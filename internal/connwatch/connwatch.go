// Package connwatch ends requests in flight on a NATS connection when the
// connection is lost.
//
// A request (a KV read or write, a JetStream publish waiting for its
// acknowledgement) sent just before the server died is never answered: the
// new server, or the restarted one, knows nothing of it. nats.go fails the
// acknowledgements of asynchronous publishes on a reconnect, but a
// synchronous request waits out its whole timeout. In a coordinator that is
// a shard held for the timeout; in a worker, a task's result held back long
// enough for a join timeout to fire. A context from [Watch.Bind] is cancelled
// as soon as the connection is lost, so the caller retries right after the
// reconnect instead.
package connwatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/internal/startstop"
)

// ErrLost is the cause of a context from [Watch.Bind] that ended because the
// connection was lost.
var ErrLost = errors.New("the connection to NATS was lost; retried once it is back")

// Watch follows one connection. The zero value and a nil *Watch bind
// nothing (contexts end only by their timeout). Safe for concurrent use.
type Watch struct {
	mu   sync.Mutex
	lost *startstop.Signal // guarded by mu; fired when the connection is next lost

	ch   chan nats.Status
	nc   *nats.Conn
	done chan struct{}
	once sync.Once
}

// New watches nc until [Watch.Stop]. It does not close nc.
func New(nc *nats.Conn) *Watch {
	w := &Watch{nc: nc, done: make(chan struct{}), lost: startstop.NewSignal()}
	w.ch = nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	go w.run()
	return w
}

func (w *Watch) run() {
	defer close(w.done)
	for st := range w.ch {
		w.mu.Lock()
		w.lost.Fire()
		if st != nats.CLOSED {
			// Requests sent from now on are buffered and sent on reconnect,
			// where they are answered: they get a fresh signal.
			w.lost = startstop.NewSignal()
		}
		w.mu.Unlock()
	}
}

// Stop stops watching and waits for the watch's goroutine. Safe to call
// more than once, and on a nil or zero Watch.
func (w *Watch) Stop() {
	if w == nil || w.nc == nil {
		return
	}
	w.once.Do(func() {
		w.nc.RemoveStatusListener(w.ch)
		<-w.done
	})
}

// Bind returns a context derived from parent that ends after timeout, or
// when the connection is lost after Bind was called (its cause is then
// [ErrLost]), whichever comes first. The caller must call the returned
// cancel function.
func (w *Watch) Bind(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	if w == nil || w.nc == nil {
		return ctx, cancel
	}
	w.mu.Lock()
	lost := w.lost
	w.mu.Unlock()
	bound, end := context.WithCancelCause(ctx)
	stop := context.AfterFunc(lost.Context(), func() { end(ErrLost) })
	return bound, func() {
		stop()
		end(nil)
		cancel()
	}
}
