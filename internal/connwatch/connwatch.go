// Package connwatch ends requests in flight on a NATS connection when the
// connection is lost, and pull requests when it is back.
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
//
// A pull request (a worker's fetch of commands) sent before the server died
// is forgotten by the restarted server, so nothing is delivered to it, and
// the fetch waits out its own expiry while commands pile up. A context from
// [Watch.BindReconnect] ends when the connection is back, so the caller pulls
// again at once; [Watch.Connected] waits for the connection, so no pull
// request is queued for a server that is not there.
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

// ErrReconnected is the cause of a context from [Watch.BindReconnect] that
// ended because the connection was re-established.
var ErrReconnected = errors.New("the connection to NATS is back; requests to the old server are forgotten")

// closed is a closed channel: the connection of a nil or zero Watch counts as
// connected.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Watch follows one connection. The zero value and a nil *Watch bind
// nothing (contexts end only by their timeout). Safe for concurrent use.
type Watch struct {
	mu   sync.Mutex
	lost *startstop.Signal // guarded by mu; fired when the connection is next lost
	back *startstop.Signal // guarded by mu; fired when the connection is next re-established
	up   chan struct{}     // guarded by mu; closed while connected

	ch   chan nats.Status
	nc   *nats.Conn
	done chan struct{}
	once sync.Once
}

// New watches nc until [Watch.Stop]. It does not close nc.
func New(nc *nats.Conn) *Watch {
	w := &Watch{nc: nc, done: make(chan struct{}), lost: startstop.NewSignal(), back: startstop.NewSignal()}
	w.ch = nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CONNECTED, nats.CLOSED)
	w.up = closed
	if !nc.IsConnected() {
		w.up = make(chan struct{})
	}
	go w.run()
	return w
}

func (w *Watch) run() {
	defer close(w.done)
	for st := range w.ch {
		w.mu.Lock()
		switch st {
		case nats.CONNECTED:
			w.back.Fire()
			w.back = startstop.NewSignal()
			w.setUp()
		case nats.CLOSED:
			w.lost.Fire()
			w.setUp() // nothing to wait for: calls fail at once
		default:
			w.lost.Fire()
			// Requests sent from now on are buffered and sent on reconnect,
			// where they are answered: they get a fresh signal.
			w.lost = startstop.NewSignal()
			if w.up == closed {
				w.up = make(chan struct{})
			}
		}
		w.mu.Unlock()
	}
}

// setUp marks the connection up; w.mu is held.
func (w *Watch) setUp() {
	if w.up != closed {
		close(w.up)
		w.up = closed
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

// Connected returns a channel that is closed once the connection is up: at
// once when it is up now, otherwise at the reconnect (or when the
// connection is closed for good, so a caller never waits for nothing).
// A nil or zero Watch counts as connected.
func (w *Watch) Connected() <-chan struct{} {
	if w == nil || w.nc == nil {
		return closed
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up
}

// Lost returns a channel that is closed when the connection is next lost
// (at once when it is closed for good). A nil or zero Watch returns nil:
// never.
func (w *Watch) Lost() <-chan struct{} {
	if w == nil || w.nc == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost.Done()
}

// Back returns a channel that is closed when the connection is next
// re-established after a loss: a request the server keeps open, such as a
// pull request, is forgotten by a restarted server. Take it while connected
// and before sending (see [Watch.BindReconnect]). A nil or zero Watch
// returns nil: never.
func (w *Watch) Back() <-chan struct{} {
	if w == nil || w.nc == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.back.Done()
}

// BindReconnect returns a context derived from parent that ends after
// timeout, or when the connection is re-established after a loss (its cause
// is then [ErrReconnected]), whichever comes first: for a request the server
// keeps open, such as a pull request, which a restarted server no longer
// knows. Call it while connected (see [Watch.Connected]): called during an
// outage, the reconnect ends the context as its request reaches the new
// server. The caller must call the returned cancel function.
func (w *Watch) BindReconnect(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	if w == nil || w.nc == nil {
		return ctx, cancel
	}
	w.mu.Lock()
	back := w.back
	w.mu.Unlock()
	bound, end := context.WithCancelCause(ctx)
	stop := context.AfterFunc(back.Context(), func() { end(ErrReconnected) })
	return bound, func() {
		stop()
		end(nil)
		cancel()
	}
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
