package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// The floor scenario's streams and subjects, apart from the engine's.
const (
	floorStream  = "CANOBENCH_FLOOR"
	floorBucket  = "canobench_floor"
	floorSubject = "canobench.floor"
)

// floor runs a one-task run's message protocol with nothing else: bare
// nats.go code that makes, per run, the broker calls the engine makes — a
// trigger request and its reply, the record's create, the command stored
// (waited for), delivered and acknowledged, the result request and its
// answer, the record's update (compare-and-set on its revision, with the
// TTL of an ended run's record), two events — with no codec, state
// machine, shards or bookkeeping between them, and with the leanest
// client: each step is a callback on the answer to the one before
// (floorCalls), with no goroutine, timer or channel per message. Fixed
// payloads of the engine's sizes (floorTriggerSize and the rest). Its
// runs/s approximates the most this protocol allows on the machine and
// server at hand, so onetask's figure over it says how close the engine
// comes, and its ratio to the baseline what the engine's can be. It runs
// in this process whatever -procs says; with -defer-start it makes the
// deferred-start protocol's calls (no record at the trigger).
//
// Until 2026-12-01 the floor ran a goroutine and a synchronous request
// (with its timer) per message, and came out at 0.22–0.29× the baseline;
// that was its own client's overhead, not the protocol's (see
// docs/performance.md, "The floor, rewritten").
func (e *env) floor(ctx context.Context) (Result, error) {
	n, inflight := e.cfg.Runs, e.cfg.Concurrency
	url := e.nc.ConnectedUrl()
	var conns []*nats.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	connect := func() (*nats.Conn, error) {
		c, err := nats.Connect(url)
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	cnc, err := connect() // the coordinator's
	if err != nil {
		return Result{}, err
	}
	wnc, err := connect() // the worker's
	if err != nil {
		return Result{}, err
	}
	_ = e.js.DeleteStream(ctx, floorStream)
	_ = e.js.DeleteKeyValue(ctx, floorBucket)
	defer func() {
		_ = e.js.DeleteStream(context.Background(), floorStream)
		_ = e.js.DeleteKeyValue(context.Background(), floorBucket)
	}()
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: floorStream, Subjects: []string{floorSubject + ".task.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Duplicates: 45 * time.Second}); err != nil {
		return Result{}, err
	}
	if _, err := e.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: floorBucket, History: 1, Storage: jetstream.FileStorage,
		LimitMarkerTTL: time.Minute}); err != nil {
		return Result{}, err
	}
	failed := make(chan error, 1) // the first failure ends the load
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	record, event := make([]byte, floorRecordSize), make([]byte, floorEventSize)
	revs := make([]atomic.Uint64, n)
	stores, err := newFloorCalls(cnc)
	if err != nil {
		return Result{}, err
	}
	// store publishes to a stream and calls then with the stream sequence
	// of its PubAck, read by hand as the coordinator reads it.
	store := func(subject string, h nats.Header, data []byte, then func(seq uint64)) {
		err := stores.send(&nats.Msg{Subject: subject, Header: h, Data: data}, func(r *nats.Msg) {
			seq, err := floorSeq(r.Data)
			if err != nil {
				fail(fmt.Errorf("store on %s: %w", subject, err))
				return
			}
			then(seq)
		})
		if err != nil {
			fail(err)
		}
	}
	// With Config.DeferStart, as the engine's deferred start: no record
	// at the trigger; the first result creates it, and the trigger request
	// is answered then.
	deferred := e.cfg.DeferStart > 0
	held := make([]atomic.Pointer[nats.Msg], n)
	started := func(m *nats.Msg, run string) {
		_ = m.Respond([]byte(`{"v":1,"run_id":"` + run + `"}`))
		_ = cnc.PublishMsg(&nats.Msg{Subject: floorSubject + ".event." + run + ".started", Header: floorEventHeader(run, "started"), Data: event})
	}
	// The coordinator: triggers, then results. Bodies start with the run's
	// number, padded to the size of what the engine sends.
	if _, err := cnc.Subscribe(floorSubject+".trigger", func(m *nats.Msg) {
		i, run := floorRun(m.Data)
		command := func() {
			if deferred {
				held[i].Store(m) // before the command: its result may come at once
			}
			store(floorSubject+".task.noop", nats.Header{jetstream.MsgIDHeader: {run + "/0/-1"}, "Cano-Coordinator": {"c"}},
				floorBody(i, floorCommandSize), func(uint64) {
					if !deferred {
						started(m, run)
					}
				})
		}
		if deferred {
			command()
			return
		}
		store(protocol.KVSubject(floorBucket, run), nats.Header{jetstream.ExpectedLastSubjSeqHeader: {"0"}}, record, func(rev uint64) {
			revs[i].Store(rev)
			command()
		})
	}); err != nil {
		return Result{}, err
	}
	if _, err := cnc.Subscribe(floorSubject+".result", func(m *nats.Msg) {
		i, run := floorRun(m.Data)
		// An ended run's record expires after the run retention (1 h).
		h := nats.Header{jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(revs[i].Load(), 10)}, "Nats-TTL": {"3600"}}
		store(protocol.KVSubject(floorBucket, run), h, record, func(uint64) {
			if deferred {
				started(held[i].Load(), run) // the start and the result were written together
			}
			_ = m.Respond(nil)
			_ = cnc.PublishMsg(&nats.Msg{Subject: floorSubject + ".event." + run + ".completed", Header: floorEventHeader(run, "completed"), Data: event})
		})
	}); err != nil {
		return Result{}, err
	}
	// The worker: a result request, answered, then the acknowledgement.
	results, err := newFloorCalls(wnc)
	if err != nil {
		return Result{}, err
	}
	wjs, err := jetstream.New(wnc)
	if err != nil {
		return Result{}, err
	}
	cons, err := wjs.CreateOrUpdateConsumer(ctx, floorStream, jetstream.ConsumerConfig{Durable: "noop",
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: floorSubject + ".task.noop", MaxAckPending: 2 * inflight})
	if err != nil {
		return Result{}, err
	}
	// The subscriptions reach the server before the first trigger does.
	for _, c := range conns {
		if err := c.Flush(); err != nil {
			return Result{}, err
		}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		i, _ := floorRun(m.Data())
		err := results.send(&nats.Msg{Subject: floorSubject + ".result", Data: floorBody(i, floorResultSize)}, func(*nats.Msg) {
			_ = m.Ack()
		})
		if err != nil {
			fail(fmt.Errorf("worker: %w", err))
		}
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		return Result{}, err
	}
	defer cc.Stop()
	// The driver: the engine's (load), with the trigger replies delivered
	// to a subscription as the client's are.
	replies := e.nc.NewRespInbox()
	rsub, err := e.nc.Subscribe(replies, func(*nats.Msg) {})
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = rsub.Unsubscribe() }()
	cpu0 := cpuTime()
	l, err := e.load(ctx, "floor", n, floorSubject+".event.*.completed", failed, func(i int) error {
		return e.nc.PublishRequest(floorSubject+".trigger", replies, floorBody(i, floorTriggerSize))
	})
	if err != nil {
		return Result{}, err
	}
	cpu := cpuTime() - cpu0
	r := Result{Scenario: "floor", Figures: map[string]float64{
		"runs":           float64(n),
		"runs_per_s":     float64(n) / l.took.Seconds(),
		"cpu_us_per_run": float64(cpu.Microseconds()) / float64(n),
		"max_gap_ms":     float64(l.maxGap) / float64(time.Millisecond),
	}, Note: "the one-task protocol in bare nats.go, no engine: the most onetask can reach here"}
	if len(l.each) > 0 { // one run at a time (the latency scenario's yardstick)
		r.Figures["p50_ms"], r.Figures["p99_ms"] = percentile(l.each, 0.50), percentile(l.each, 0.99)
	}
	return r, nil
}

// floorCalls sends the floor's requests on one connection and calls each
// one's continuation with its answer, on one subscription's goroutine (so a
// continuation must not block): no goroutine, timer or channel per request.
// An answer that never comes leaves its run unfinished, which the load's
// own bound reports.
type floorCalls struct {
	nc     *nats.Conn
	prefix string // reply subjects: prefix + token
	mu     sync.Mutex
	next   uint64
	then   map[uint64]func(*nats.Msg)
}

func newFloorCalls(nc *nats.Conn) (*floorCalls, error) {
	fc := &floorCalls{nc: nc, prefix: nc.NewInbox() + ".", then: map[uint64]func(*nats.Msg){}}
	sub, err := nc.Subscribe(fc.prefix+"*", fc.answer)
	if err != nil {
		return nil, err
	}
	_ = sub.SetPendingLimits(-1, -1) // at most a load's window of answers are owed
	return fc, nil
}

// send publishes msg as a request; then gets its answer.
func (fc *floorCalls) send(msg *nats.Msg, then func(*nats.Msg)) error {
	fc.mu.Lock()
	fc.next++
	token := fc.next
	fc.then[token] = then
	fc.mu.Unlock()
	msg.Reply = fc.prefix + strconv.FormatUint(token, 10)
	return fc.nc.PublishMsg(msg)
}

func (fc *floorCalls) answer(m *nats.Msg) {
	token, err := strconv.ParseUint(m.Subject[len(fc.prefix):], 10, 64)
	if err != nil {
		return
	}
	fc.mu.Lock()
	then := fc.then[token]
	delete(fc.then, token)
	fc.mu.Unlock()
	if then != nil {
		then(m)
	}
}

// The sizes of what the engine sends for a one-task run (its messages'
// bodies as seen on the wire by a subscriber to ">", 2026-12-01), so the
// floor moves the same bytes: the JSON trigger request, the task command,
// the result request, the run record and each event (whose headers are
// Content-Type and the Nats-Msg-Id the events capture stream
// de-duplicates on).
const (
	floorTriggerSize = 50
	floorCommandSize = 268
	floorResultSize  = 223
	floorRecordSize  = 310
	floorEventSize   = 167
)

// floorEventHeader is an event's headers, as the coordinator sets them.
func floorEventHeader(run, typ string) nats.Header {
	return nats.Header{"Content-Type": {"application/json"}, jetstream.MsgIDHeader: {layout.EventMsgID(run, 0, typ)}}
}

// floorBody is a message body of size bytes that starts with run i's number.
func floorBody(i, size int) []byte {
	b := make([]byte, size)
	copy(b, strconv.Itoa(i)+" ")
	return b
}

// floorRun reads the run number a floorBody starts with, and its run id.
func floorRun(b []byte) (int, string) {
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	i, _ := strconv.Atoi(string(b[:j]))
	return i, "r" + string(b[:j])
}

// floorSeq reads a PubAck's stream sequence, or returns the answer as the
// error when it has none (a JetStream error).
func floorSeq(b []byte) (uint64, error) {
	const key = `"seq":`
	if k := bytes.Index(b, []byte(key)); k >= 0 && !bytes.Contains(b, []byte(`"error"`)) {
		var seq uint64
		for _, ch := range b[k+len(key):] {
			if ch < '0' || ch > '9' {
				break
			}
			seq = seq*10 + uint64(ch-'0')
		}
		if seq > 0 {
			return seq, nil
		}
	}
	return 0, fmt.Errorf("store refused: %s", b)
}
