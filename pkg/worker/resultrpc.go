package worker

import (
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/connwatch"
	"github.com/cano-nats/cano/internal/startstop"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Results by request/reply. A command names the coordinator that published
// it (protocol.HeaderCoordinator); the worker sends the command's result to
// that coordinator as a core NATS request, and acknowledges the command once
// the coordinator answers that it applied the result and stored what the
// run owes next (see pkg/coordinator/resultrpc.go for that side). No stream
// stores the result. Where the request does not get that answer the result
// goes on, and the command stays held (its lease, task slot and place in
// Worker.tasks) until it is settled:
//
//   - nobody listens on the coordinator's subject (it stopped or died): the
//     request goes to any coordinator (the queue group);
//   - nobody listens there either: the result is published to the results
//     stream, asynchronously as without a coordinator (results.go);
//   - the coordinator refused it (protocol.HeaderResultError), the request
//     timed out (resultRequestTimeout) or the connection was lost while it
//     was in flight: the result is published to the results stream marked
//     protocol.HeaderResent — it may have been applied, and a coordinator
//     that finds it so re-publishes what the run owes.
//
// Requests are answered on one subscription per worker (an inbox wildcard);
// a call is found by the token that ends its reply subject.

// resultRequestTimeout bounds the wait for a coordinator's answer. A
// coordinator answers within milliseconds (its requests in flight are
// bounded, a request over the bound is refused at once), so a request
// unanswered this long went to a coordinator that died or is cut off: the
// result goes to the stream, where another coordinator takes it. A late
// answer is ignored; the result sent twice changes the run once.
const resultRequestTimeout = 5 * time.Second

// resultCalls are the result requests in flight of one worker. Safe for
// concurrent use.
type resultCalls struct {
	w      *Worker
	prefix string // reply subjects are prefix + token
	sub    *nats.Subscription
	stop   *startstop.Signal
	done   chan struct{}
	out    *outbox // outbox.go

	mu    sync.Mutex
	next  uint64                 // guarded by mu
	calls map[uint64]*resultCall // guarded by mu
}

// resultCall is one result in flight to a coordinator.
type resultCall struct {
	pendingResult
	out   *nats.Msg   // the result, addressed to the results stream
	any   bool        // sent to the queue group (the command's coordinator did not listen)
	timer *time.Timer // ends the wait
	lost  <-chan struct{}
}

// startResultCalls subscribes to the answers and follows the connection:
// a loss fails the calls in flight at once (their answers would be lost).
func (w *Worker) startResultCalls() (*resultCalls, error) {
	rc := &resultCalls{w: w, prefix: w.nc.NewInbox() + ".", calls: map[uint64]*resultCall{},
		stop: startstop.NewSignal(), done: make(chan struct{})}
	sub, err := w.nc.Subscribe(rc.prefix+"*", rc.onAnswer)
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1) // at most Concurrency answers are owed
	rc.sub = sub
	rc.out = newOutbox(w.nc, rc.sent)
	go rc.watch(w.conn)
	return rc, nil
}

// close stops the subscription; calls still in flight (none once the
// worker's tasks are settled) go to the results stream.
func (rc *resultCalls) close() {
	if rc == nil {
		return
	}
	rc.stop.Fire()
	<-rc.done
	rc.out.stop()
	_ = rc.sub.Unsubscribe()
	rc.failAll(nil)
}

// watch fails the calls in flight whenever the connection is lost.
func (rc *resultCalls) watch(conn *connwatch.Watch) {
	defer close(rc.done)
	var handled <-chan struct{}
	for {
		lost := conn.Lost()
		if lost == handled {
			// Closed for good: a call fails as it is sent.
			<-rc.stop.Done()
			return
		}
		select {
		case <-rc.stop.Done():
			return
		case <-lost:
			rc.failAll(lost)
			handled = lost
		}
	}
}

// failAll sends on the calls sent while lost was the connection's next
// loss (nil: every call).
func (rc *resultCalls) failAll(lost <-chan struct{}) {
	rc.mu.Lock()
	var failed []*resultCall
	for token, call := range rc.calls {
		if lost == nil || call.lost == lost {
			failed = append(failed, call)
			delete(rc.calls, token)
		}
	}
	rc.mu.Unlock()
	for _, call := range failed {
		call.timer.Stop()
		rc.toStream(call, true)
	}
}

// sendResult sends out, cmd's result, to the coordinator that published
// msg and reports true; the call then settles msg. False: the command names
// no coordinator (the caller publishes to the stream).
func (w *Worker) sendResult(msg jetstream.Msg, cmd *protocol.TaskCommand, out *nats.Msg, since time.Time) bool {
	rc := w.rcalls
	coordinator := msg.Headers().Get(protocol.HeaderCoordinator)
	if rc == nil || coordinator == "" || protocol.ValidToken(coordinator) != nil {
		return false
	}
	call := &resultCall{pendingResult: pendingResult{msg: msg, cmd: cmd, since: since}, out: out}
	rc.send(call, w.names.RPCResultSubject(coordinator))
	return true
}

// send registers call and sends its request on subject.
func (rc *resultCalls) send(call *resultCall, subject string) {
	rc.mu.Lock()
	rc.next++
	token := rc.next
	rc.calls[token] = call
	call.lost = rc.w.conn.Lost()
	// Registered first: the answer may come before PublishMsg returns.
	timeout := resultRequestTimeout
	if t := rc.w.cfg.resultTimeout; t > 0 {
		timeout = t
	}
	call.timer = time.AfterFunc(timeout, func() { rc.timedOut(token) })
	rc.mu.Unlock()
	reply := strconv.AppendUint([]byte(rc.prefix), token, 10)
	o := outgoing{token: token, msg: &nats.Msg{Subject: subject, Reply: string(reply), Header: requestHeader(call.out.Header), Data: call.out.Data}}
	// Alone (this task is the worker's one in flight), it goes at once;
	// otherwise with the others (outbox.go).
	if rc.w.inFlight.Load() <= 1 || !rc.out.add(o) {
		rc.out.publishNow(&o)
	}
}

// sent follows a result request's publish: a failed one goes to the
// results stream.
func (rc *resultCalls) sent(o *outgoing, err error) {
	if err != nil {
		if c := rc.take(o.token); c != nil {
			rc.toStream(c, false)
		}
		return
	}
	if hook := rc.w.afterResultSent; hook != nil {
		hook(rc, o.token)
	}
}

// requestHeader is the header of a result request: the stream message's
// without its message id, which only the stream's de-duplication reads —
// usually no header at all (a trace context is the exception), which spares
// the worker, the server and the coordinator writing and parsing one.
func requestHeader(h nats.Header) nats.Header {
	if len(h) <= 1 {
		return nil // the message id alone
	}
	out := make(nats.Header, len(h)-1)
	for k, v := range h {
		if k != jetstream.MsgIDHeader {
			out[k] = v
		}
	}
	return out
}

// take removes and returns the call of token, nil when it is settled
// already.
func (rc *resultCalls) take(token uint64) *resultCall {
	rc.mu.Lock()
	call := rc.calls[token]
	delete(rc.calls, token)
	rc.mu.Unlock()
	if call != nil {
		call.timer.Stop()
	}
	return call
}

func (rc *resultCalls) timedOut(token uint64) {
	if call := rc.take(token); call != nil {
		rc.w.log.Debug("result request timed out; the result goes to the results stream", "run_id", call.cmd.RunID)
		rc.toStream(call, true)
	}
}

// onAnswer settles the call an answer is for. It runs on the
// subscription's goroutine and must not block.
func (rc *resultCalls) onAnswer(m *nats.Msg) {
	token, err := strconv.ParseUint(m.Subject[len(rc.prefix):], 10, 64)
	if err != nil {
		return
	}
	if lose := rc.w.cfg.loseAnswer; lose != nil {
		rc.mu.Lock()
		call := rc.calls[token]
		rc.mu.Unlock()
		if call != nil && lose(call.cmd) {
			return // the call stays, to time out
		}
	}
	call := rc.take(token)
	if call == nil {
		return // answered after its timeout: sent on already
	}
	switch {
	case len(m.Data) == 0 && m.Header.Get("Status") == "503": // no responders
		if !call.any {
			call.any = true
			rc.send(call, rc.w.names.RPCResultAnySubject())
			return
		}
		rc.toStream(call, false)
	case m.Header.Get(protocol.HeaderResultError) != "":
		rc.w.log.Debug("a coordinator refused a result; it goes to the results stream",
			"run_id", call.cmd.RunID, "reason", m.Header.Get(protocol.HeaderResultError))
		rc.toStream(call, true)
	default:
		_ = call.msg.Ack()
		rc.w.settled()
	}
}

// toStream publishes call's result to the results stream (results.go);
// resent marks it as possibly applied already.
func (rc *resultCalls) toStream(call *resultCall, resent bool) {
	w := rc.w
	if resent {
		h := maps.Clone(call.out.Header) // the request's own stays as sent
		h[protocol.HeaderResent] = []string{"1"}
		call.out.Header = h
	}
	if w.publishResult(call.msg, call.cmd, call.out, call.since) {
		return
	}
	go func() {
		defer w.settled()
		w.deliverResult(call.msg, call.cmd, call.out, call.since, nil)
	}()
}
