package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/protocol"
)

// A finished task's result is published asynchronously: the runner that
// ran the task takes its next command at once instead of waiting a round
// trip for the PubAck. The PubAck handler (resultAcked) then acknowledges
// the command — the result is durable before its command is acknowledged,
// so a worker killed in between leaves a redelivered command whose result
// is de-duplicated (the result's Nats-Msg-Id). A refused, lost or timed-out
// PubAck (resultRefused) falls back to the synchronous retries of deliver,
// as when the broker refuses outcomes: the command stays held and
// unacknowledged meanwhile.
//
// A result awaiting its PubAck keeps its command's task slot, lease and
// place in Worker.tasks until it is settled, so at most Config.Concurrency
// commands are in hand (running or awaiting a PubAck), Stop waits for them,
// and the delivery count stays the number of attempts started.

// pendingResults are the results published and not yet acknowledged by the
// broker, by their message. The zero value is ready; safe for concurrent
// use.
type pendingResults struct {
	mu sync.Mutex
	m  map[*nats.Msg]pendingResult // guarded by mu
}

// pendingResult is the command a result answers.
type pendingResult struct {
	msg   jetstream.Msg // the command (its lease)
	cmd   *protocol.TaskCommand
	since time.Time // when the result was first published (ResultRetry counts from it)
}

func (p *pendingResults) add(out *nats.Msg, r pendingResult) {
	p.mu.Lock()
	if p.m == nil {
		p.m = map[*nats.Msg]pendingResult{}
	}
	p.m[out] = r
	p.mu.Unlock()
}

// take removes and returns out's entry; ok is false for a message that is
// not a pending result (or was taken already).
func (p *pendingResults) take(out *nats.Msg) (r pendingResult, ok bool) {
	p.mu.Lock()
	r, ok = p.m[out]
	if ok {
		delete(p.m, out)
	}
	p.mu.Unlock()
	return r, ok
}

// publishResult publishes out, cmd's result, asynchronously and reports
// true: the PubAck handlers settle msg, which stays held until then.
// False means the publish was not sent (the caller delivers it
// synchronously).
func (w *Worker) publishResult(msg jetstream.Msg, cmd *protocol.TaskCommand, out *nats.Msg, since time.Time) bool {
	// Registered first: the PubAck may arrive before PublishMsgAsync returns.
	w.results.add(out, pendingResult{msg: msg, cmd: cmd, since: since})
	if _, err := w.js.PublishMsgAsync(out); err != nil {
		w.results.take(out)
		return false
	}
	return true
}

// resultAcked is the PubAck handler (jetstream.WithPublishAsyncAckHandler):
// the result is stored, its command is acknowledged. It runs on the
// client's PubAck goroutine and must not block.
func (w *Worker) resultAcked(_ jetstream.JetStream, out *nats.Msg, _ *jetstream.PubAck) {
	p, ok := w.results.take(out)
	if !ok {
		return
	}
	_ = p.msg.Ack()
	w.settled()
}

// resultRefused is the error handler (jetstream.WithPublishAsyncErrHandler):
// an error PubAck, a PubAck timeout or a lost connection. The result is
// retried synchronously (deliver) on a goroutine of its own, as the handler
// must not block; the command stays held until it is delivered or handed
// back.
func (w *Worker) resultRefused(_ jetstream.JetStream, out *nats.Msg, err error) {
	p, ok := w.results.take(out)
	if !ok {
		return
	}
	go func() {
		defer w.settled()
		w.deliverResult(p.msg, p.cmd, out, p.since, err)
	}()
}

// deliverResult publishes out, cmd's result, with deliver's retries, then
// acknowledges the command — or, when the broker refuses the result for
// longer than Config.ResultRetry, hands the command back. failed is the
// error of a try already made, if any.
func (w *Worker) deliverResult(msg jetstream.Msg, cmd *protocol.TaskCommand, out *nats.Msg, since time.Time, failed error) {
	err := w.deliver("result", cmd.RunID, since, failed, func(ctx context.Context) error {
		if _, err := w.js.PublishMsg(ctx, out); err != nil {
			return fmt.Errorf("publish result: %w", err)
		}
		return nil
	})
	if err != nil {
		w.handBack(msg, cmd, err)
		return
	}
	_ = msg.Ack()
}

// settled ends a command's time in the worker's hands: its task slot and
// its place in Worker.tasks are given up.
func (w *Worker) settled() {
	<-w.slots
	w.tasks.Done()
}
