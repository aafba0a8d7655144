package worker

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/retry"
)

// A worker keeps one pull request open per consumer, on a subscription the
// consumer's pull loop keeps for its whole life. The jetstream package's
// Fetch makes an inbox, a subscription, a goroutine and two timers per
// request, and ends a request early only by dropping what it has received;
// with the short expiry that made stopping quick, an idle worker paid a
// request, its timeout answer and two subscription changes per consumer
// every second, most of its idle CPU and its broker's.
//
// An open request holds task slots (see puller), so a long one is kept only
// where the requests of all consumers together hold at most half the slots
// (Config.Concurrency at least twice the consumers): a consumer waiting for
// a slot then waits only for a task. With fewer slots, requests are short
// (pullShortExpires), so consumers take turns with the slots, as in a worker
// of concurrency 2 that hosts six kinds.
const (
	// pullExpires is how long one pull request stays open waiting for
	// commands; commands are delivered to it as they arrive.
	pullExpires = 30 * time.Second
	// pullHeartbeat is how often the server tells an open request that has
	// nothing for it that it is still there.
	pullHeartbeat = 2 * time.Second
	// pullCheck is how often an open request is checked for having been
	// heard from (a command, a heartbeat). One sent before the last check
	// and silent since is taken as lost (the consumer's leader died, or its
	// server) and replaced, so commands never wait out its expiry.
	pullCheck = 5 * time.Second
	// pullShortExpires is the expiry of a short request, which has no
	// heartbeat: one not ended after pullShortCheck is taken as lost.
	pullShortExpires = time.Second
	pullShortCheck   = 2 * time.Second
	// pullDrainTimeout bounds how long a stopping pull loop waits for the
	// server to confirm that its subscription is gone.
	pullDrainTimeout = 2 * time.Second
	// pullRetryDelay is the pause after a request that could not be sent or
	// was refused, so a broker that refuses cannot make a loop spin.
	pullRetryDelay = 100 * time.Millisecond
)

// puller keeps one consumer's pull request open, for never more commands
// than there are free task slots: every command the broker delivers is
// started at once. So the broker's delivery count is the number of attempts
// started: a command is never delivered and left waiting in a buffer, where
// a crash or a shutdown would cost it an attempt it never made. A puller
// belongs to its pull loop's goroutine.
type puller struct {
	w     *Worker
	kind  string
	share int    // the most slots one request may hold
	next  string // the consumer's subject for pull requests
	// Each request's reply subject is prefix and the request's count, so
	// a status (the end of a request, a heartbeat) of a request given up
	// on is told from the open one's.
	prefix string
	msgs   chan *nats.Msg
	sub    *nats.Subscription
	// The requests' expiry and heartbeat (0: none), and how often the open
	// one is checked for being heard from (see pullCheck).
	expires, heartbeat, check time.Duration
	n                         uint64 // requests made; the open one is n
	sent                      time.Time
	open                      bool
	want                      int  // slots the open request holds for commands not delivered yet
	heard                     bool // the open request was heard from since the last check
	body                      []byte
}

// newPuller subscribes to the replies of the pull requests it will send to
// next (a consumer's [protocol.ConsumerNextSubject]), long ones or short.
func (w *Worker) newPuller(next, kind string, share int, long bool) (*puller, error) {
	p := &puller{w: w, kind: kind, share: share, next: next, prefix: w.nc.NewInbox() + ".",
		expires: pullShortExpires, check: pullShortCheck,
		// A request brings at most share commands, then one status; late
		// commands of a request given up on hold a delivery each, and
		// heartbeats come every pullHeartbeat: this never fills.
		msgs: make(chan *nats.Msg, 2*share+16)}
	if long {
		p.expires, p.heartbeat, p.check = pullExpires, pullHeartbeat, pullCheck
	}
	sub, err := w.nc.ChanSubscribe(p.prefix+"*", p.msgs)
	if err != nil {
		return nil, fmt.Errorf("worker: subscribe for %s's commands: %w", kind, err)
	}
	p.sub = sub
	return p, nil
}

// pull keeps a request open until ctx ends, then drains.
func (w *Worker) pull(ctx context.Context, p *puller) {
	defer w.pulls.Done()
	check := time.NewTicker(p.check)
	defer check.Stop()
	var back <-chan struct{}
	for {
		if !p.open {
			var ok bool
			if back, ok = p.request(ctx); !ok {
				p.drain(ctx)
				return
			}
		}
		select {
		case m := <-p.msgs:
			if !p.receive(ctx, m) && !p.pause(ctx) {
				p.drain(ctx)
				return
			}
		case now := <-check.C:
			if p.open && !p.heard && now.Sub(p.sent) >= p.check {
				w.log.Debug("pull request not heard from: pulling again", "kind", p.kind, "within", p.check)
				p.abandon()
			}
			p.heard = false
		case <-back:
			// Requests live on the server they were sent to: a restarted
			// server forgets them while commands wait.
			p.abandon()
		case <-ctx.Done():
			p.drain(ctx)
			return
		}
	}
}

// request reserves at least one slot (blocking) and up to share, and sends
// a pull request for as many commands once connected. It returns the
// channel of the connection's next reconnect (which ends the request), or
// false when ctx ended first.
func (p *puller) request(ctx context.Context) (<-chan struct{}, bool) {
	w := p.w
	for {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, false
		}
		n := 1
	more:
		for n < p.share {
			select {
			case w.slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		// A pull request queued during an outage, or sent to a server
		// that is gone, is never answered: pull only while connected.
		select {
		case <-w.conn.Connected():
		case <-ctx.Done():
			w.release(n)
			return nil, false
		}
		back := w.conn.Back()
		p.n++
		p.body = p.body[:0]
		p.body = append(p.body, `{"batch":`...)
		p.body = strconv.AppendInt(p.body, int64(n), 10)
		p.body = append(p.body, `,"expires":`...)
		p.body = strconv.AppendInt(p.body, int64(p.expires), 10)
		if p.heartbeat > 0 {
			p.body = append(p.body, `,"idle_heartbeat":`...)
			p.body = strconv.AppendInt(p.body, int64(p.heartbeat), 10)
		}
		p.body = append(p.body, '}')
		err := w.nc.PublishRequest(p.next, p.prefix+strconv.FormatUint(p.n, 10), p.body)
		if err == nil {
			p.open, p.want, p.heard, p.sent = true, n, false, time.Now()
			return back, true
		}
		w.release(n)
		w.log.Debug("pull request", "kind", p.kind, "err", err)
		if !p.pause(ctx) {
			return nil, false
		}
	}
}

// receive handles m, a command or a status. It returns false when the
// request it ended was refused (the caller pauses before the next).
func (p *puller) receive(ctx context.Context, m *nats.Msg) bool {
	status := ""
	if len(m.Data) == 0 && len(m.Header) > 0 {
		status = m.Header.Get("Status")
	}
	if status == "" {
		p.command(ctx, m)
		return true
	}
	// A status is sent to its request's reply subject (a command carries
	// the subject it was stored under).
	if !p.open || p.count(m.Subject) != p.n {
		return true // the end of a request given up on
	}
	if status == "100" { // a heartbeat
		p.heard = true
		return true
	}
	// Any other status ends the request: 408 when it expired, 409 when the
	// consumer's leader changed or it was deleted.
	p.abandon()
	if status == "408" {
		return true
	}
	p.w.log.Debug("pull request ended", "kind", p.kind, "status", status, "description", m.Header.Get("Description"))
	return false
}

// command starts m, a delivered command, on a slot the open request holds.
// A command delivered beyond those (by a request given up on: it cannot be
// told from the open one's, which then brings one fewer) is started once a
// slot is free, since it holds a delivery and handing it back would cost it
// an attempt; only when the worker is stopping is it handed back.
func (p *puller) command(ctx context.Context, m *nats.Msg) {
	w := p.w
	msg := &delivered{m: m, nc: w.nc}
	if p.want > 0 {
		p.heard = true
		if p.want--; p.want == 0 {
			p.open = false // all it asked for: the server ends it
		}
	} else {
		select {
		case w.slots <- struct{}{}:
		default:
			select {
			case w.slots <- struct{}{}:
			case <-ctx.Done():
				w.log.Info("worker stopping: command handed back", "subject", m.Subject)
				_ = msg.NakWithDelay(stopHandBackDelay)
				return
			}
		}
	}
	w.tasks.Add(1)
	w.inFlight.Add(1)
	w.dispatch(ctx, msg)
}

// abandon gives up on the open request: its slots are freed, and what it
// still delivers is started as free slots allow (see command).
func (p *puller) abandon() {
	if p.open {
		p.w.release(p.want)
		p.open, p.want = false, 0
	}
}

// pause waits pullRetryDelay, or returns false when ctx ends first.
func (p *puller) pause(ctx context.Context) bool { return retry.Sleep(ctx, pullRetryDelay) == nil }

// drain ends the subscription without losing a command: the server
// forgets the subscription (and so every request it answers) before the
// subscription ends here, so a command it delivered before is received and
// started on the slots held for it, and none is delivered after. (In a
// cluster whose consumer leader is on another server, the leader learns of
// it a moment later; a command it sends in that moment is lost to this
// worker and redelivered after AckWait, with that delivery counted.)
func (p *puller) drain(ctx context.Context) {
	closed := p.sub.StatusChanged(nats.SubscriptionClosed)
	if err := p.sub.Drain(); err != nil {
		_ = p.sub.Unsubscribe()
	} else {
		t := time.NewTimer(pullDrainTimeout)
		defer t.Stop()
	wait:
		for {
			select {
			case m := <-p.msgs:
				p.receive(ctx, m)
			case <-closed:
				break wait
			case <-t.C:
				_ = p.sub.Unsubscribe()
				break wait
			}
		}
	}
	for {
		select {
		case m := <-p.msgs:
			p.receive(ctx, m)
		default:
			p.abandon()
			return
		}
	}
}

// count is the request count a reply subject ends with (0 for none).
func (p *puller) count(subject string) uint64 {
	if len(subject) <= len(p.prefix) {
		return 0
	}
	n, _ := strconv.ParseUint(subject[len(p.prefix):], 10, 64)
	return n
}

func (w *Worker) release(n int) {
	for i := 0; i < n; i++ {
		<-w.slots
	}
}

// dispatch hands msg to an idle runner, or starts one if none is idle.
// Runners are long-lived goroutines that execute one command after another:
// a command started on a fresh goroutine grows its stack (copying it) while
// it decodes, which cost about a third of execute's CPU time. A runner
// holds a task slot while it executes, and one that has just freed its slot
// may not be idle yet when the slot is reused, so there are at most twice
// as many runners as slots (about as many in practice). Idle runners end
// with the pull loops (ctx).
func (w *Worker) dispatch(ctx context.Context, msg jetstream.Msg) {
	select {
	case w.idle <- msg:
	default:
		go w.runner(ctx, msg)
	}
}

func (w *Worker) runner(ctx context.Context, msg jetstream.Msg) {
	for {
		w.runTask(msg)
		select {
		case msg = <-w.idle:
		case <-ctx.Done():
			return
		}
	}
}

// runTask executes msg. The command's task slot and its place in w.tasks
// are given up here, or, when its result awaits a PubAck, by the PubAck's
// handler (results.go).
func (w *Worker) runTask(msg jetstream.Msg) {
	pending := false
	defer func() {
		w.inFlight.Add(-1)
		if !pending {
			w.settled()
		}
	}()
	pending = w.execute(msg)
}

// delivered is a command delivered to a worker's own pull request: a core
// message with JetStream's acknowledgements, as the jetstream package's
// messages have (it makes those only from its own requests).
type delivered struct {
	m     *nats.Msg
	nc    *nats.Conn
	acked atomic.Bool
}

var _ jetstream.Msg = (*delivered)(nil)

// Acknowledgement bodies (JetStream's consumer protocol).
var (
	ackAck      = []byte("+ACK")
	ackNak      = []byte("-NAK")
	ackProgress = []byte("+WPI")
	ackTerm     = []byte("+TERM")
)

func (d *delivered) Metadata() (*jetstream.MsgMetadata, error) {
	md, err := d.m.Metadata()
	if err != nil {
		return nil, err
	}
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Consumer: md.Sequence.Consumer, Stream: md.Sequence.Stream},
		NumDelivered: md.NumDelivered,
		NumPending:   md.NumPending,
		Timestamp:    md.Timestamp,
		Stream:       md.Stream,
		Consumer:     md.Consumer,
		Domain:       md.Domain,
	}, nil
}

func (d *delivered) Data() []byte         { return d.m.Data }
func (d *delivered) Headers() nats.Header { return d.m.Header }
func (d *delivered) Subject() string      { return d.m.Subject }
func (d *delivered) Reply() string        { return d.m.Reply }
func (d *delivered) Ack() error           { return d.settle(ackAck) }
func (d *delivered) Nak() error           { return d.settle(ackNak) }
func (d *delivered) Term() error          { return d.settle(ackTerm) }
func (d *delivered) InProgress() error    { return d.send(ackProgress) }
func (d *delivered) TermWithReason(reason string) error {
	return d.settle(append(append(append([]byte(nil), ackTerm...), ' '), reason...))
}

func (d *delivered) NakWithDelay(delay time.Duration) error {
	body := append([]byte(nil), ackNak...)
	if delay > 0 {
		body = append(body, ` {"delay": `...)
		body = strconv.AppendInt(body, delay.Nanoseconds(), 10)
		body = append(body, '}')
	}
	return d.settle(body)
}

// DoubleAck acknowledges the command and waits for the server to confirm.
func (d *delivered) DoubleAck(ctx context.Context) error {
	if d.acked.Load() {
		return jetstream.ErrMsgAlreadyAckd
	}
	if d.m.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	if _, err := d.nc.RequestWithContext(ctx, d.m.Reply, ackAck); err != nil {
		return err
	}
	d.acked.Store(true)
	return nil
}

// settle sends body, an acknowledgement that settles the command, once.
func (d *delivered) settle(body []byte) error {
	if d.acked.Load() {
		return jetstream.ErrMsgAlreadyAckd
	}
	if err := d.send(body); err != nil {
		return err
	}
	d.acked.Store(true)
	return nil
}

func (d *delivered) send(body []byte) error {
	if d.m.Reply == "" {
		return jetstream.ErrMsgNoReply
	}
	return d.nc.Publish(d.m.Reply, body)
}
