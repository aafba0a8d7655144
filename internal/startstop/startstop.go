// Package startstop is the one start/stop pattern of the engine's
// long-running components: the coordinator, the worker, the scheduler, the
// leader elector and the breaker store (river's rivershared/startstop is
// the model; this one is smaller).
//
// The rules every component follows:
//
//   - A component starts once. A second Start — while it runs, after Stop,
//     or after a Start that failed — returns [ErrAlreadyStarted] (the
//     public packages re-export this one value, so errors.Is matches it
//     whichever package's name is used).
//   - A Start that fails half-way stops what it had started before it
//     returns ([Undo] gives that stop a fresh, bounded context, since the
//     caller's may be what ran out).
//   - Stop may be called before Start and more than once; only the first
//     call does anything. It returns once every goroutine the component
//     started has returned, or when its context ends.
//   - Contexts are not kept in structs: a component's lifetime is a
//     [Signal], and goroutines are counted by a [Life].
package startstop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrAlreadyStarted is returned by a second Start of a component.
var ErrAlreadyStarted = errors.New("already started: a component starts once (also after a failed Start or a Stop); create a new one to start again")

type phase uint8

const (
	idle phase = iota
	running
	stopped
)

// Life tracks a component's phase (idle, running, stopped) and the
// goroutines it started. The zero value is an idle component. Start and
// Stop are safe for concurrent use; components usually call them under
// their own lock, which also orders their setup and teardown.
type Life struct {
	mu    sync.Mutex
	phase phase
	wg    sync.WaitGroup
}

// Start moves an idle component to running. It returns
// [ErrAlreadyStarted], wrapped with name, if the component was started or
// stopped before.
func (l *Life) Start(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.phase != idle {
		return fmt.Errorf("%s: %w", name, ErrAlreadyStarted)
	}
	l.phase = running
	return nil
}

// Stop moves the component to stopped. It reports whether this is the
// first Stop (the caller tears down only then) and whether Start had been
// called before it.
func (l *Life) Stop() (first, started bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.phase == stopped {
		return false, true
	}
	started = l.phase == running
	l.phase = stopped
	return true, started
}

// Running reports whether the component started and has not stopped.
func (l *Life) Running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.phase == running
}

// Go runs f in a goroutine that [Life.Wait] waits for.
func (l *Life) Go(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

// Wait waits for every goroutine started with [Life.Go] to return, or
// until ctx ends (then it returns an error wrapping ctx.Err(); the
// goroutines go on and finish on their own).
func (l *Life) Wait(ctx context.Context) error {
	return Wait(ctx, &l.wg)
}

// Wait waits for wg, or until ctx ends (then it returns an error wrapping
// ctx.Err()).
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("goroutines still running: %w", ctx.Err())
	}
}

// UndoTimeout bounds the stop that undoes a failed Start.
const UndoTimeout = 5 * time.Second

// Undo calls stop to undo a Start that failed, with a context that keeps
// ctx's values but not its end (a Start often fails because ctx ended),
// bounded by UndoTimeout. Its error is dropped: the Start error is the one
// to report.
func Undo(ctx context.Context, stop func(context.Context) error) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), UndoTimeout)
	defer cancel()
	_ = stop(uctx)
}

// Signal is a component's lifetime: fired once by its Stop, read by its
// goroutines as a channel or as a context (for calls that take one). The
// zero value is not usable; use [NewSignal].
type Signal struct {
	// The lifetime is kept as a context because JetStream calls (watches,
	// consumers) end when their context ends; this is the one place the
	// engine keeps one, and it never carries a caller's values or deadline.
	ctx    context.Context //nolint:containedctx // see above
	cancel context.CancelFunc
}

// NewSignal returns a signal not fired yet.
func NewSignal() *Signal {
	ctx, cancel := context.WithCancel(context.Background())
	return &Signal{ctx: ctx, cancel: cancel}
}

// Fire fires the signal; firing it again does nothing.
func (s *Signal) Fire() { s.cancel() }

// Done is closed once the signal fired.
func (s *Signal) Done() <-chan struct{} { return s.ctx.Done() }

// Fired reports whether the signal fired.
func (s *Signal) Fired() bool { return s.ctx.Err() != nil }

// Context returns a context that ends when the signal fires.
func (s *Signal) Context() context.Context { return s.ctx }
