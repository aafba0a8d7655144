package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Delivering a finished task's outcome (its branch outcome and its result)
// to a broker that refuses it for a while.
const (
	// resultRetryFirstDelay and resultRetryMaxDelay bound the backoff
	// between two tries of one outcome while the broker refuses it.
	resultRetryFirstDelay = 100 * time.Millisecond
	resultRetryMaxDelay   = 5 * time.Second
	// handBacksMax is how many deliveries of a command beyond its retry
	// policy's attempts may end in a hand-back because the command's
	// outcome could not be delivered (each after Config.ResultRetry of
	// tries); the next such failure dead-letters the command instead.
	handBacksMax = 4
	// handBackFirstDelay and handBackMaxDelay bound the redelivery delay of
	// a command handed back because its outcome could not be delivered.
	handBackFirstDelay = 250 * time.Millisecond
	handBackMaxDelay   = 30 * time.Second
	// stopHandBackDelay delays the redelivery of a command a stopping
	// worker hands back. Its pull requests are gone by then on its own
	// server (each pull loop drains first), but in a cluster the consumer's
	// leader may learn so a moment later: at once, the command could come
	// straight back to the stopping worker and be handed back again,
	// costing an attempt.
	stopHandBackDelay = 2 * time.Second
)

// backoff is first·2ⁿ, at most limit (n counts from 0).
func backoff(first, limit time.Duration, n int) time.Duration {
	if n < 0 {
		n = 0
	}
	d := first
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// handBackPlan decides what becomes of a command whose outcome could not
// be delivered, on its delivered-th delivery under a policy of maxAttempts
// attempts (0 when unknown: a command that could not be decoded): handed
// back after delay, or, past handBacksMax deliveries beyond the policy,
// dead-lettered. So no command is redelivered without bound.
func handBackPlan(delivered, maxAttempts int) (delay time.Duration, deadLetter bool) {
	if delivered >= maxAttempts+handBacksMax {
		return 0, true
	}
	return backoff(handBackFirstDelay, handBackMaxDelay, delivered-1), false
}

// outage tracks the tasks of one worker whose outcomes the broker refuses,
// so an outage is logged once when a task first meets it and once when a
// task gets through again, however many tasks retry meanwhile. The zero
// value is ready; safe for concurrent use.
type outage struct {
	mu    sync.Mutex
	down  bool      // guarded by mu; the last outcome tried was refused
	since time.Time // guarded by mu; when down was set
	tasks int       // guarded by mu; tasks that met this outage
}

func (o *outage) begin(log *slog.Logger, what string, err error, retryFor time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tasks++
	if !o.down {
		o.down, o.since, o.tasks = true, time.Now(), 1
		log.Warn("the broker refuses finished tasks' outcomes; each task keeps its command and retries (an outage costs no attempt)",
			"first", what, "err", err, "retry_for", retryFor)
	}
}

// end ends one task's retries; ok says its outcome got through, which ends
// the outage.
func (o *outage) end(log *slog.Logger, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ok && o.down {
		o.down = false
		log.Info("the broker takes task outcomes again", "outage", time.Since(o.since).Round(time.Millisecond), "tasks", o.tasks)
	}
}

// deliver calls send until it succeeds, each call bounded by
// publishTimeout and ended at once when the connection is lost (a publish
// in flight to a server that died is never answered); while it fails it retries with backoff, until
// Config.ResultRetry after since (when the outcome was first sent) and
// until Stop's grace period ends. The caller holds the command's lease
// meanwhile, so the command is not redelivered. failed, when not nil, is
// the error of a try already made (an asynchronous publish): the outage
// begins with it.
//
// what names the outcome in logs and errors; it is "<what> of run <runID>"
// when runID is set (formatted only on failure: this is the hot path).
func (w *Worker) deliver(what, runID string, since time.Time, failed error, send func(ctx context.Context) error) error {
	deadline := since.Add(w.cfg.ResultRetry)
	failing := false
	if failed != nil {
		failing = true
		if runID != "" {
			what += " of run " + runID
		}
		w.outage.begin(w.log, what, failed, w.cfg.ResultRetry)
	}
	for n := 0; ; n++ {
		try := time.Now().Add(publishTimeout)
		if try.After(deadline) {
			try = deadline
		}
		// While failing, a reconnect after this try ends the wait below:
		// the outcome goes to the broker as soon as it is back, not after
		// a backoff grown through the outage (its task holds a slot, and a
		// join may be waiting for it).
		var back <-chan struct{}
		if failing {
			back = w.conn.Back()
		}
		ctx, cancel := w.conn.Bind(context.Background(), time.Until(try))
		err := send(ctx)
		cancel()
		if err == nil {
			if failing {
				w.outage.end(w.log, true)
			}
			return nil
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return err // nothing to wait for: the worker's connection is gone
		}
		if !failing {
			failing = true
			if runID != "" {
				what += " of run " + runID
			}
			w.outage.begin(w.log, what, err, w.cfg.ResultRetry)
			back = w.conn.Back() // a reconnect since the try is missed: the first wait is short
		}
		wait := backoff(resultRetryFirstDelay, resultRetryMaxDelay, n)
		if time.Until(deadline) < wait {
			w.outage.end(w.log, false)
			return fmt.Errorf("%s: refused for %s: %w", what, w.cfg.ResultRetry, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-w.stopping.Done():
			t.Stop()
			w.outage.end(w.log, false)
			return fmt.Errorf("%s: worker stopping: %w", what, err)
		case <-back:
			t.Stop()
			n = -1 // the backoff starts again
		case <-t.C:
		}
	}
}

// handBack returns a command whose outcome could not be delivered (err):
// after stopHandBackDelay when the worker is stopping, so another worker
// takes it;
// otherwise after a delay that grows with its deliveries; and past
// handBacksMax deliveries beyond its policy it is dead-lettered instead.
// cmd is nil when the command could not be decoded.
func (w *Worker) handBack(msg jetstream.Msg, cmd *protocol.TaskCommand, err error) {
	delivered := 1
	if md, merr := msg.Metadata(); merr == nil {
		delivered = int(md.NumDelivered)
	}
	if w.stopping.Fired() {
		w.log.Info("worker stopping: command handed back", "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(stopHandBackDelay)
		return
	}
	maxAttempts := 0
	if cmd != nil {
		maxAttempts = int(engine.MaxAttempts(cmd.Task.Retry))
	}
	delay, dead := handBackPlan(delivered, maxAttempts)
	if dead {
		reason := fmt.Errorf("worker: outcome not delivered on %d deliveries: %w", delivered, err)
		if cmd == nil {
			// The dead-letter stream itself refuses: nothing is left to try.
			w.log.Error("dropping a refused command: the dead-letter stream refuses it too; check the broker",
				"subject", msg.Subject(), "deliveries", delivered, "err", err)
			_ = msg.TermWithReason(reason.Error())
			return
		}
		w.deadLetter(msg, reason)
		return
	}
	w.log.Warn("could not deliver a task outcome; command handed back for redelivery (check the broker)",
		"subject", msg.Subject(), "deliveries", delivered, "redelivery_in", delay, "err", err)
	_ = msg.NakWithDelay(delay)
}

// abandonGrace waits, before a delivery beyond the retry policy is given
// up as abandoned, for as long as a live holder of the previous delivery
// may still take to deliver its own result once the broker is back: one
// lease plus the longest backoff between two tries. It reports false if
// the worker started stopping meanwhile.
func (w *Worker) abandonGrace() bool {
	t := time.NewTimer(w.cfg.AckWait + resultRetryMaxDelay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.stopping.Done():
		return false
	}
}
