package worker

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leases keeps the commands in a worker's hands alive. A command is held
// from the moment execute takes it until it is acknowledged, handed back or
// terminated; one goroutine per worker (run) sends InProgress for every held
// command each interval (Config.AckWait/3), so a live task keeps its command
// however long it runs — its attempt, its breaker check, the encoding and
// publishing of its result and any retries of that publish — and only a
// dead worker's commands are redelivered, about AckWait after it died.
//
// One ticker for all commands instead of one goroutine and ticker per task:
// the cost is one map entry per task and one InProgress per held command
// per tick. The zero value is ready to use; safe for concurrent use.
type leases struct {
	mu   sync.Mutex
	held map[*lease]struct{} // guarded by mu
}

// lease is a held command. Its settling methods (Ack, Nak, NakWithDelay,
// Term, TermWithReason) end the lease before they settle, so no heartbeat
// follows them: an InProgress after NakWithDelay would reset the broker's
// redelivery timer to the full AckWait instead of the requested delay.
type lease struct {
	jetstream.Msg
	l *leases
}

// hold starts heartbeating msg and returns it wrapped as a lease.
func (l *leases) hold(msg jetstream.Msg) *lease {
	le := &lease{Msg: msg, l: l}
	l.mu.Lock()
	if l.held == nil {
		l.held = map[*lease]struct{}{}
	}
	l.held[le] = struct{}{}
	l.mu.Unlock()
	return le
}

// release stops heartbeating le's command; once it returns no InProgress
// is sent for it. Releasing twice is a no-op.
func (l *leases) release(le *lease) {
	l.mu.Lock()
	delete(l.held, le)
	l.mu.Unlock()
}

// len is the number of held commands.
func (l *leases) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// beat sends InProgress for every held command. It holds mu while it
// publishes (a buffered, non-blocking publish per command), so a release
// that returned is never followed by a heartbeat.
func (l *leases) beat() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for le := range l.held {
		_ = le.InProgress()
	}
}

// run beats every interval until ctx ends.
func (l *leases) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.beat()
		}
	}
}

// Ack releases the lease, then acknowledges the command.
func (le *lease) Ack() error { le.l.release(le); return le.Msg.Ack() }

// Nak releases the lease, then hands the command back for redelivery now.
func (le *lease) Nak() error { le.l.release(le); return le.Msg.Nak() }

// NakWithDelay releases the lease, then hands the command back for
// redelivery after delay.
func (le *lease) NakWithDelay(delay time.Duration) error {
	le.l.release(le)
	return le.Msg.NakWithDelay(delay)
}

// Term releases the lease, then terminates the command.
func (le *lease) Term() error { le.l.release(le); return le.Msg.Term() }

// TermWithReason releases the lease, then terminates the command with reason.
func (le *lease) TermWithReason(reason string) error {
	le.l.release(le)
	return le.Msg.TermWithReason(reason)
}
