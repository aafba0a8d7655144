package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// runsKV is what a shard needs of the runs bucket: consistent reads
// (consistent.go), the bucket's value limit, and the two writes — the
// create of a new run and the compare-and-set of a moved one. It is the
// seam tests wrap to inject revision conflicts, timeouts and stale or
// missing records (see faultKV in the package's tests).
type runsKV interface {
	// get reads key, confirmed with the stream leader when the direct
	// read finds nothing or a revision below minRev (kvread.Reader.Get).
	get(ctx context.Context, key string, minRev uint64) (jetstream.KeyValueEntry, error)
	// leader reads key from the runs stream's leader.
	leader(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	// limit is the bucket's max value size.
	limit(ctx context.Context) int
	// create writes a new key; jetstream.ErrKeyExists if it is there.
	// create's ttl is the record's TTL ("" for the bucket's max age).
	create(ctx context.Context, key string, data []byte, ttl string) (uint64, error)
	// update writes rec (encoded as data) over revision rev and returns
	// the new revision; a conflict matches jetstream.ErrKeyRevisionMismatch.
	update(ctx context.Context, rec *protocol.RunRecord, data []byte, rev uint64) (uint64, error)
}

// jsRuns is the runs bucket on JetStream, through the coordinator's
// handles (set in Start, before any shard runs) and its shard's storer.
type jsRuns struct {
	c  *Coordinator
	st *storer
}

var _ runsKV = jsRuns{}

func (r jsRuns) get(ctx context.Context, key string, minRev uint64) (jetstream.KeyValueEntry, error) {
	return r.c.runsRead.Get(ctx, key, minRev)
}

func (r jsRuns) leader(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	return r.c.runsRead.Leader(ctx, key)
}

func (r jsRuns) limit(ctx context.Context) int { return r.c.runsRead.Limit(ctx) }

// create writes a new record: a compare-and-set on "no revision yet". A
// conflict may be a marker left by an expired or deleted record of the same
// id; nats.go's Create writes over such a marker, so it takes that case.
func (r jsRuns) create(ctx context.Context, key string, data []byte, ttl string) (uint64, error) {
	rev, err := r.st.writeRun(ctx, r.c.runs.Bucket(), key, data, 0, ttl)
	if err != nil && kvcas.Conflict(err) {
		rev, err = r.c.runs.Create(ctx, key, data)
		if err == nil && ttl != "" {
			// nats.go's Create cannot say "never" (its TTL is a duration):
			// the same record again, with the TTL, over the revision just made.
			rev, err = r.st.writeRun(ctx, r.c.runs.Bucket(), key, data, rev, ttl)
		}
	}
	return rev, err
}

// ttlNever is the TTL of a scheduled run's record: it must outlast the
// runs bucket's max age (7 days by default) until its start, however far
// ahead that is. Its next write (the start, or a cancel) has the usual TTL.
const ttlNever = "never"

// createTTL is the TTL a new record is created with.
func createTTL(rec *protocol.RunRecord) string {
	if rec.Status == protocol.RunScheduled {
		return ttlNever
	}
	return ""
}

// update: see retention.go — a terminal record is written with a TTL.
func (r jsRuns) update(ctx context.Context, rec *protocol.RunRecord, data []byte, rev uint64) (uint64, error) {
	return r.st.store(ctx, r.updateMsg(rec, data, rev))
}

// updateMsg is update's store: rec (encoded as data) over revision rev.
func (r jsRuns) updateMsg(rec *protocol.RunRecord, data []byte, rev uint64) *nats.Msg {
	c := r.c
	ttl := ""
	if rec.Status.Terminal() && c.cfg.RunRetention >= 0 {
		ttl = ttlValue(c.cfg.RunRetention.Seconds())
	}
	return runMsg(c.runs.Bucket(), layout.RunKey(rec.ID), data, rev, ttl)
}

// writeRun writes a run record of bucket: a publish to the key's subject
// that the server stores only while the key's last revision is rev (0: the
// key has none), with a TTL when ttl is set. It returns the new revision; a
// lost compare-and-set matches jetstream.ErrKeyRevisionMismatch
// (kvcas.Conflict).
//
// This is KeyValue.Update's request, made here for the hot path: nats.go
// decodes each acknowledgement with encoding/json (8 % of a coordinator's CPU
// in a one-task profile); pubAckSeq reads the sequence of a success without
// it.
func (st *storer) writeRun(ctx context.Context, bucket, key string, data []byte, rev uint64, ttl string) (uint64, error) {
	return st.store(ctx, runMsg(bucket, key, data, rev, ttl))
}

// runMsg is writeRun's store.
func runMsg(bucket, key string, data []byte, rev uint64, ttl string) *nats.Msg {
	h := nats.Header{jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(rev, 10)}}
	if ttl != "" {
		h[jetstream.MsgTTLHeader] = []string{ttl}
	}
	return &nats.Msg{Subject: protocol.KVSubject(bucket, key), Data: data, Header: h}
}

// storer makes one shard's stores: publishes to a stream, each answered by
// the broker's acknowledgement (the PubAck). store waits for its answer;
// send does not, and the shard's loop hands the answer to the store's
// continuation when it comes (see "Pipelined stores" in shard.go). The
// answers come back on the shard's own reply subjects (its inbox and a
// count), which the client library puts straight into answers, not through
// nats.go's request calls, which make a reply inbox, a channel and a map
// entry per request and hand the answer over once more (about a sixth of a
// coordinator's CPU in a one-task profile went to those requests). A
// storer belongs to its shard's loop goroutine.
type storer struct {
	nc      *nats.Conn
	prefix  string // the reply subjects: prefix + the store's count
	n       uint64 // stores made
	answers chan *nats.Msg
	sub     *nats.Subscription // made by the first store
	// The stores sent without waiting and not answered yet, by count; their
	// counts in the order sent (so by deadline), settled ones included until
	// they reach the front; and the answered ones, for the shard's loop.
	pending map[uint64]*sentStore
	order   []uint64
	ready   []answeredStore
}

// sentStore is a store sent without waiting: when its answer is overdue,
// and what to do with it.
type sentStore struct {
	deadline time.Time
	then     func(seq uint64, err error)
}

// answeredStore is a sent store and its answer (nil: none came in time).
type answeredStore struct {
	then func(seq uint64, err error)
	m    *nats.Msg
}

// maxSent bounds a shard's stores sent and not answered (every send is
// checked with canSend); a store past it is made waiting. The answers
// channel holds twice as many, so answers to stores given up on cannot
// fill it.
const maxSent = 512

func newStorer(nc *nats.Conn) *storer {
	return &storer{nc: nc, prefix: nc.NewInbox() + ".", answers: make(chan *nats.Msg, 2*maxSent+8),
		pending: make(map[uint64]*sentStore)}
}

// subscribe makes the storer's subscription, once.
func (st *storer) subscribe() error {
	if st.sub != nil {
		return nil
	}
	sub, err := st.nc.ChanSubscribe(st.prefix+"*", st.answers)
	if err != nil {
		return err
	}
	st.sub = sub
	return nil
}

// publish publishes msg as the storer's next store: its reply subject is
// the storer's prefix and count (st.n).
func (st *storer) publish(msg *nats.Msg) error {
	if err := st.subscribe(); err != nil {
		return err
	}
	st.n++
	msg.Reply = st.prefix + strconv.FormatUint(st.n, 10)
	return st.nc.PublishMsg(msg)
}

// store publishes msg and waits for its acknowledgement, or ctx. It
// returns the stored message's sequence. An answer to a store sent without
// waiting is put in ready meanwhile; one to an earlier store that gave up
// waiting is recognised by its subject and dropped.
func (st *storer) store(ctx context.Context, msg *nats.Msg) (uint64, error) {
	if err := st.publish(msg); err != nil {
		return 0, err
	}
	for {
		select {
		case m := <-st.answers:
			if m.Subject != msg.Reply {
				st.route(m) // a sent store's, or late: its store gave up
				continue
			}
			return answerSeq(m)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// canSend reports whether send may be used: fewer than maxSent stores are
// sent and not answered.
func (st *storer) canSend() bool { return len(st.pending) < maxSent }

// send publishes msg without waiting: then is called by the shard's loop
// (answered) with its answer, or with errStoreOverdue when none came within
// kvTimeout. An error means msg was not sent and then will not be called.
func (st *storer) send(msg *nats.Msg, then func(seq uint64, err error)) error {
	if err := st.publish(msg); err != nil {
		return err
	}
	st.pending[st.n] = &sentStore{deadline: time.Now().Add(kvTimeout), then: then}
	st.order = append(st.order, st.n)
	return nil
}

// route puts m, an answer that is not the waiting store's, in ready when
// it answers a sent store, and drops it otherwise (late).
func (st *storer) route(m *nats.Msg) {
	if len(m.Subject) <= len(st.prefix) {
		return
	}
	n, err := strconv.ParseUint(m.Subject[len(st.prefix):], 10, 64)
	if err != nil {
		return
	}
	if p := st.pending[n]; p != nil {
		delete(st.pending, n)
		st.ready = append(st.ready, answeredStore{then: p.then, m: m})
		st.trim()
	}
}

// trim drops the settled stores from the front of order.
func (st *storer) trim() {
	for len(st.order) > 0 && st.pending[st.order[0]] == nil {
		st.order = st.order[1:]
	}
	if len(st.order) == 0 {
		st.order = st.order[:0:0] // let the backing array go
	}
}

// overdue moves the sent stores whose deadline is before now to ready,
// unanswered.
func (st *storer) overdue(now time.Time) {
	for len(st.order) > 0 {
		n := st.order[0]
		p := st.pending[n]
		if p != nil && p.deadline.After(now) {
			return
		}
		if p != nil {
			delete(st.pending, n)
			st.ready = append(st.ready, answeredStore{then: p.then})
		}
		st.order = st.order[1:]
	}
}

// answered calls the continuations of the answered stores, in the order
// answered, until none is left (a continuation may send or wait for more).
func (st *storer) answered() {
	for len(st.ready) > 0 {
		batch := st.ready
		st.ready = nil
		for i, a := range batch {
			batch[i] = answeredStore{}
			if a.m == nil {
				a.then(0, errStoreOverdue)
				continue
			}
			seq, err := answerSeq(a.m)
			a.then(seq, err)
		}
	}
}

// errStoreOverdue is the error of a sent store not answered within
// kvTimeout: it may or may not be stored.
var errStoreOverdue = fmt.Errorf("coordinator: store: no acknowledgement within %s: %w", kvTimeout, context.DeadlineExceeded)

// answerSeq reads a store's answer: its sequence, or why it was refused.
func answerSeq(m *nats.Msg) (uint64, error) {
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		return 0, fmt.Errorf("%w: %w", jetstream.ErrNoStreamResponse, nats.ErrNoResponders)
	}
	return pubAckSeq(m.Data)
}

// close ends the storer's subscription; a later store makes a new one.
func (st *storer) close() {
	if st.sub != nil {
		_ = st.sub.Unsubscribe()
		st.sub = nil
	}
}

// pubAckSeq returns the stream sequence of a JetStream publish
// acknowledgement ({"stream":"KV_x","seq":42}), or its error, marked as
// kvcas.Mark does.
func pubAckSeq(b []byte) (uint64, error) {
	if !bytes.Contains(b, []byte(`"error"`)) {
		if i := bytes.Index(b, []byte(`"seq":`)); i >= 0 {
			var seq uint64
			n := 0
			for _, ch := range b[i+len(`"seq":`):] {
				if ch < '0' || ch > '9' {
					break
				}
				seq = seq*10 + uint64(ch-'0')
				n++
			}
			if n > 0 && n < 20 {
				return seq, nil
			}
		}
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
		Seq   uint64              `json:"seq"`
	}
	if err := json.Unmarshal(b, &ack); err != nil {
		return 0, fmt.Errorf("coordinator: store: unreadable acknowledgement %q: %w", truncate(string(b), 200), err)
	}
	if ack.Error != nil {
		return 0, kvcas.Mark(ack.Error)
	}
	if ack.Seq == 0 {
		return 0, fmt.Errorf("coordinator: store: acknowledgement without a sequence: %q", truncate(string(b), 200))
	}
	return ack.Seq, nil
}
