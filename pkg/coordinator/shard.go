package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/kvpurge"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/tracectx"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

const (
	kvTimeout     = 5 * time.Second
	maxCASRetries = 16
	// maxGroup bounds the inputs a shard takes from its queue at once. The
	// inputs of one run among them are applied together and written with
	// one compare-and-set: a split's results arriving together cost one
	// record write, not one each.
	maxGroup = 256
)

// job is one decoded input, handled by the shard that owns its run.
type job struct {
	stop        bool
	msg         jetstream.Msg
	runID       string
	redelivered bool
	delivered   uint64 // the delivery count (0: unknown)
	replyTo     string
	// rpc marks a trigger request (requests.go): msg is its requestMsg.
	// fresh says its run id was generated for it (no look-up needed).
	rpc, fresh bool
	trig       *protocol.Trigger
	res        *protocol.TaskResult
	timer      *protocol.TimerFire
	cancel     *protocol.CancelRequest
	// startNow marks a start-now request (Names.StartNowSubject): timer is
	// the run's start timer, its time filled in from the record.
	startNow bool
}

// entry is a cached run record with its KV revision.
type entry struct {
	rec *protocol.RunRecord
	rev uint64
	dyn *protocol.SplitSpec
	// Kept by the stall check (sweep.go): when it last re-drove the run,
	// and the step's bound once computed.
	redrivenAt time.Time
	bound      time.Duration
}

// pendingAck acknowledges (or terminates, or naks) an input once the
// publishes it caused are acknowledged by the server.
type pendingAck struct {
	stop    bool
	msg     jetstream.Msg
	more    []jetstream.Msg // acknowledged like msg (inputs applied together)
	futures []jetstream.PubAckFuture
	term    string
}

type shard struct {
	c     *Coordinator
	id    int
	in    chan job
	acks  chan pendingAck
	cache map[string]*entry // owned by the loop goroutine
	kv    runsKV            // the runs bucket (runskv.go)
	st    *storer           // the shard's stores (runskv.go)
	// trace is the trace context of the input being published for
	// (tracing.go); set and cleared around publish by the loop goroutine.
	trace nats.Header
	kvc   kvContext // the context of store calls (kvCtx); loop goroutine only
	// Start records held for the run's first input (Config.DeferStart,
	// deferred.go): by run, and in the order they fall due.
	held     map[string]*heldStart
	dueq     []*heldStart
	dueTimer *time.Timer
	// Pipelined stores (see below): the runs with a store sent and not
	// answered, each with the inputs that arrived for it meanwhile; the
	// timer that finds overdue answers; and whether stores must wait (a
	// store that failed sent is redone waiting).
	busy      map[string][]job
	sentTimer *time.Timer
	sentArmed bool
	mustWait  bool
}

// kvContext is a shard's reusable context for its store calls: bound to the
// connection (connwatch), so calls in flight end when it is lost, and to a
// deadline. It is held in the shard, against the house rule of no contexts
// in structs, because making one per input cost 8 % of a coordinator's CPU
// in a one-task profile (a timer, two child contexts and their removal);
// only the shard's loop goroutine touches it.
type kvContext struct {
	ctx      context.Context //nolint:containedctx // see kvContext
	cancel   context.CancelFunc
	deadline time.Time
}

// kvCtx returns the context for the shard's next store calls: they end
// between kvTimeout/2 and kvTimeout from now, or when the connection is
// lost, or when parent ends. One is made about every kvTimeout/2 (or after
// a loss) and reused meanwhile.
func (s *shard) kvCtx(parent context.Context) context.Context {
	k := &s.kvc
	if k.ctx != nil && k.ctx.Err() == nil && time.Until(k.deadline) >= kvTimeout/2 {
		return k.ctx
	}
	s.endKVCtx()
	k.ctx, k.cancel = s.c.conn.Bind(parent, kvTimeout)
	k.deadline = time.Now().Add(kvTimeout)
	return k.ctx
}

// endKVCtx releases the shard's store-call context.
func (s *shard) endKVCtx() {
	if s.kvc.cancel != nil {
		s.kvc.cancel()
		s.kvc = kvContext{}
	}
}

func newShard(c *Coordinator, id int) *shard {
	st := newStorer(c.nc)
	return &shard{c: c, id: id, in: make(chan job, ShardQueueDefault),
		acks: make(chan pendingAck, ShardQueueDefault), cache: make(map[string]*entry), kv: jsRuns{c, st}, st: st,
		busy: make(map[string][]job)}
}

func (s *shard) loop(ctx context.Context) {
	defer s.c.wg.Done()
	defer func() { s.acks <- pendingAck{stop: true} }()
	defer s.endKVCtx()
	defer s.st.close()
	stall, stopStall := s.stallTicker()
	defer stopStall()
	// A store sent to a server that died is never answered: when the
	// connection is lost, the stores in flight are given up on at once (as
	// a waiting store's call ends, kvContext), not after kvTimeout, and are
	// redone by the waiting code after the reconnect. A run whose store
	// waited out kvTimeout held its inputs that long: a join of 5 s
	// expired through one broker restart.
	lost := s.c.conn.Lost()
	for {
		select {
		case <-ctx.Done():
			s.drainSent()
			return
		case <-stall:
			s.sweep(ctx)
		case <-s.dueC():
			s.writeDue(ctx)
		case m := <-s.st.answers:
			s.takeAnswers(m)
		case <-s.sentC():
			s.sentArmed = false
			s.st.overdue(time.Now())
			s.armSent()
		case <-lost:
			lost = s.c.conn.Lost() // stores sent from now on are answered after the reconnect
			s.st.overdue(time.Now().Add(2 * kvTimeout))
		case j := <-s.in:
			batch := []job{j}
		drain:
			for len(batch) < maxGroup && !j.stop {
				select {
				case j = <-s.in:
					batch = append(batch, j)
				default:
					break drain
				}
			}
			if s.handleBatch(ctx, batch) {
				s.drainSent()
				s.writeHeld(ctx)
				return
			}
		}
		s.settleAnswered()
	}
}

// settleAnswered runs the continuations of the answered stores, then arms
// the overdue timer for any store still in flight: a continuation's own
// sends (a request's record after its command) mark no run busy, and the
// timer may have found nothing pending when it last fired.
func (s *shard) settleAnswered() {
	s.st.answered()
	s.armSent()
}

// Pipelined stores. A shard sends the stores of its common paths — a
// trigger request's first command and record (requests.go), a record
// update (apply) — without waiting for their answers, and goes on with
// other runs' inputs; a store's answer, taken by the loop, continues the
// input that sent it. Waiting for each answer on the shard's goroutine
// cost a park and a wake per store, the largest part of the engine's own
// CPU per run beyond its protocol (docs/performance.md, "Where the
// engine's CPU goes, by goroutine").
//
// One store per run is in flight: a run with one sent is busy, and the
// inputs that reach it meanwhile wait in busy (in order) until the store's
// continuation is done. Anything out of the common way — a failed or
// overdue store, a conflict, a held start, a test's fault hook — is redone
// by the waiting code (mustWait), which was and stays the reference: a
// conflict reads the record, a store that may have been made is found by
// the next read, as after a crash.

// canSend reports whether the shard may send a store without waiting.
func (s *shard) canSend() bool {
	if s.mustWait || !s.st.canSend() {
		return false
	}
	_, ok := s.kv.(jsRuns) // the tests' fault-injecting wrappers wait
	return ok
}

// markBusy marks runID as having a store in flight.
func (s *shard) markBusy(runID string) {
	s.busy[runID] = nil
	s.armSent()
}

// armSent arms the timer that looks for overdue answers, when stores are
// in flight and it is not armed.
func (s *shard) armSent() {
	if s.sentArmed || len(s.st.pending) == 0 {
		return
	}
	if s.sentTimer == nil {
		s.sentTimer = time.NewTimer(kvTimeout / 2)
	} else {
		s.sentTimer.Reset(kvTimeout / 2)
	}
	s.sentArmed = true
}

// sentC is the channel of the timer that looks for overdue answers (nil:
// not armed).
func (s *shard) sentC() <-chan time.Time {
	if !s.sentArmed {
		return nil
	}
	return s.sentTimer.C
}

// unbusy ends runID's store in flight and handles the inputs that waited
// for it.
func (s *shard) unbusy(ctx context.Context, runID string) {
	waiting := s.busy[runID]
	delete(s.busy, runID)
	if len(s.busy) == 0 && s.sentArmed && len(s.st.pending) == 0 {
		s.sentTimer.Stop()
		s.sentArmed = false
	}
	if len(waiting) > 0 {
		s.handleBatch(ctx, waiting)
	}
}

// waitFor runs fn with stores made waiting (the reference path).
func (s *shard) waitFor(fn func()) {
	was := s.mustWait
	s.mustWait = true
	fn()
	s.mustWait = was
}

// takeAnswers moves m, an answer just taken, and those already in the
// channel to ready.
func (s *shard) takeAnswers(m *nats.Msg) {
	s.st.route(m)
	for {
		select {
		case m := <-s.st.answers:
			s.st.route(m)
		default:
			return
		}
	}
}

// drainSent finishes the stores in flight when the shard stops: their
// answers are waited for (kvTimeout at most, then given up on) and their
// continuations run, waiting for any store they make.
func (s *shard) drainSent() {
	s.mustWait = true
	limit := time.NewTimer(kvTimeout)
	defer limit.Stop()
	for {
		s.st.answered()
		if len(s.st.pending) == 0 {
			return
		}
		select {
		case m := <-s.st.answers:
			s.takeAnswers(m)
		case <-limit.C:
			s.st.overdue(time.Now().Add(2 * kvTimeout)) // every one
		}
	}
}

// handleBatch handles inputs taken from the queue together, in order per
// run: consecutive non-trigger inputs of one run are applied as one group
// (eachGroup, step.go). It reports whether a stop job was met.
func (s *shard) handleBatch(ctx context.Context, batch []job) (stop bool) {
	done := make([]bool, len(batch))
	return eachGroup(batch, done, nil, func(k groupKind, group []job) {
		if waiting, ok := s.busy[group[0].runID]; ok {
			s.busy[group[0].runID] = append(waiting, group...) // after its store in flight
			return
		}
		switch k {
		case groupTrigger:
			s.trigger(ctx, group[0])
		case groupPurge:
			s.purge(ctx, group[0])
		default:
			s.apply(ctx, group)
		}
	})
}

func (s *shard) ackLoop() {
	defer s.c.wg.Done()
	for p := range s.acks {
		if p.stop {
			return
		}
		var failed error
		for _, f := range p.futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				s.c.warn("publish "+err.Error(), "publish failed; input will be redelivered", "subject", f.Msg().Subject, "err", err)
				failed = fmt.Errorf("coordinator: publish on %s: %w", f.Msg().Subject, err)
			}
		}
		for i := -1; i < len(p.more); i++ {
			msg := p.msg
			if i >= 0 {
				msg = p.more[i]
			}
			switch {
			case failed != nil:
				s.c.nakOrGiveUp(msg, failed)
			case p.term != "":
				_ = msg.TermWithReason(p.term)
			default:
				_ = msg.Ack()
			}
		}
	}
}

func (s *shard) trigger(ctx context.Context, j job) {
	if j.rpc {
		s.request(ctx, j) // requests.go
		return
	}
	kctx := s.kvCtx(ctx)
	s.writeHeldFirst(kctx, j.runID) // a stored trigger for a run id a request holds (deferred.go)
	m, rec, fx, data, ok := s.start(kctx, j)
	if !ok {
		return
	}
	rev, err := s.kv.create(kctx, layout.RunKey(j.runID), data, createTTL(rec)) // runskv.go
	if err != nil {
		if kvcas.Conflict(err) {
			s.existing(kctx, j, m)
			return
		}
		s.nak(j, err)
		return
	}
	if hook := s.c.afterStartRecord; hook != nil && rec.Status == protocol.RunScheduled {
		hook(j.runID) // a test's crash: the record written, its start timer not
	}
	s.reply(j, &protocol.TriggerReply{V: protocol.SchemaVersion, RunID: j.runID})
	s.commit([]job{j}, m, rec, rev, nil, &fx)
}

// start builds the record and first effects of j's run (engine.Start)
// and encodes the record. ok is false when j was refused (an unknown
// workflow, a trigger the definition refuses, a record over the bucket's
// limit) or handed back (the definition could not be read now).
func (s *shard) start(ctx context.Context, j job) (m *engine.Machine, rec *protocol.RunRecord, fx engine.Effects, data []byte, ok bool) {
	m, err := s.c.defs.machine(ctx, j.trig.Workflow, j.trig.DefVersion)
	if err != nil {
		if errors.Is(err, fsm.ErrConfiguration) {
			s.reject(j, "trigger", err)
			return nil, nil, fx, nil, false
		}
		s.nak(j, err)
		return nil, nil, fx, nil, false
	}
	rec, fx, err = engine.Start(m, j.trig, j.runID, s.c.cfg.Now())
	if err == nil {
		data, err = wirecodec.Encode(rec)
	}
	if err == nil {
		err = s.checkRecordSize(ctx, j, len(data)) // consistent.go
	}
	if err != nil {
		s.reject(j, "trigger", err)
		return nil, nil, fx, nil, false
	}
	return m, rec, fx, data, true
}

// existing answers a trigger whose run already exists (same run id or
// idempotency key): nothing starts; what the record owes is re-published
// (see redrives).
func (s *shard) existing(ctx context.Context, j job, m *engine.Machine) {
	e, err := s.load(ctx, j.runID)
	if err != nil {
		s.nak(j, err)
		return
	}
	s.answerExisting(ctx, j, e)
}

// answerExisting answers a trigger with e, the run that has its id, and
// re-publishes what e owes (see redrives).
func (s *shard) answerExisting(ctx context.Context, j job, e *entry) {
	s.reply(j, &protocol.TriggerReply{V: protocol.SchemaVersion, RunID: j.runID, Existing: true})
	if !redrives(j, e.rec) {
		s.acks <- pendingAck{msg: j.msg}
		return
	}
	s.owed(ctx, []job{j}, e)
}

// apply applies the inputs of one run, in order, to its record and writes
// the result with one compare-and-set. Inputs that change nothing
// (duplicates, late results) are acknowledged, or, when redelivered, answered
// with what the record owes.
func (s *shard) apply(ctx context.Context, jobs []job) {
	c := s.c
	runID := jobs[0].runID
	kctx := s.kvCtx(ctx)
	var e *entry
	var fresh bool
	var err error
	h := s.held[runID] // a start record not written yet (deferred.go)
	if h != nil && behind(h.rec, jobs) {
		_, _ = s.finishStart(kctx, h) // an input of a later step: the record exists elsewhere (a failure handed the request back)
		h = nil
	}
	if h != nil {
		e, fresh = &entry{rec: h.rec}, true
	} else {
		e, fresh, err = s.loadFresh(kctx, runID)
	}
	if err == nil && h == nil && behind(e.rec, jobs) {
		// Stale (a lagging replica, or a cache another coordinator moved
		// past): the leader's record is final (consistent.go).
		e, err = s.leaderRecord(kctx, runID)
		fresh = true
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		if sj, ok := startJob(jobs); ok {
			// The first result of a run started by a trigger request whose
			// record was not written (requests.go).
			e, err = s.startFromResult(kctx, sj)
			fresh = true
		}
	}
	if err != nil {
		for _, j := range jobs {
			switch act, source, rerr := missing(j, err); act { // step.go
			case missingNak:
				s.nak(j, rerr)
			case missingReject:
				s.reject(j, source, rerr)
			default:
				s.acks <- pendingAck{msg: j.msg} // a timer of a run that has been purged
			}
		}
		return
	}
	for attempt := 0; ; attempt++ {
		m, gone, err := s.machineOf(kctx, e.rec)
		if err == nil {
			err = s.loadSplitSpec(kctx, e)
		}
		if err != nil {
			s.nakAll(jobs, err)
			return
		}
		st := applyInputs(m, e.rec, e.dyn, jobs, c.cfg.Now()) // step.go; m nil: only a cancel or the deadline ends the run
		for _, f := range st.failed {
			if gone != nil && errors.Is(f.err, engine.ErrNoDefinition) {
				f.err = gone
			}
			s.nak(f.j, f.err)
		}
		jobs = st.kept
		switch st.plan(fresh) {
		case planRefresh:
			if e, err = s.readRecord(kctx, runID, e.rev); err != nil {
				s.nakAll(jobs, err)
				return
			}
			fresh = true
			continue
		case planSettle:
			s.settleUnchanged(kctx, st.unchanged, e)
			return
		}
		rec := st.rec
		for _, p := range st.specs {
			spec := &protocol.SplitSpec{Tasks: p.spec.Tasks, Join: p.spec.Join, Common: p.spec.Common, Params: p.spec.Params}
			data, err := encodeSpec(spec)
			if err == nil {
				_, err = c.branches.Put(kctx, layout.SplitSpecKey(rec.ID, p.step), data)
			}
			if err != nil {
				s.nakAll(jobs, err)
				return
			}
		}
		// The publish copies data, and a failed update is encoded
		// again: the buffer is reused once the update is sent.
		bp := wirecodec.GetBuf()
		data, err := wirecodec.AppendEncode((*bp)[:0], rec)
		if err != nil {
			for _, j := range jobs {
				s.reject(j, "result", err)
			}
			return
		}
		if s.canSend() {
			s.sendUpdate(ctx, jobs, m, e, h, &st, rec, data)
			wirecodec.PutBuf(bp, data)
			return
		}
		rev, err := s.kv.update(kctx, rec, data, e.rev) // runskv.go: a final record expires
		wirecodec.PutBuf(bp, data)
		switch afterWrite(err, attempt) {
		case writeConflict:
			if h != nil {
				// A record created elsewhere (from the start the first
				// result echoed), or a marker of an earlier run with this
				// id: the held start is written as without the mode (its
				// create answers from the record found) and the inputs
				// applied to what it returns.
				e, err = s.finishStart(kctx, h)
				h = nil
			} else {
				// The conflict proves a later revision: a read must reach it.
				e, err = s.readRecord(kctx, runID, e.rev+1)
			}
			if err != nil {
				s.nakAll(jobs, err)
				return
			}
			fresh = true
			continue
		case writeFailed:
			s.nakAll(jobs, err)
			return
		}
		s.written(kctx, h, m, &st, rev)
		return
	}
}

// written finishes what applying inputs gave (st) once its record write
// took, at revision rev: h, the held start the write created the record
// from (if any), answers its requests; the effects are published and the
// inputs acknowledged.
func (s *shard) written(ctx context.Context, h *heldStart, m *engine.Machine, st *step, rev uint64) {
	if hook := s.c.afterRecord; hook != nil {
		hook(st.applied) // a test's crash between the write and the publishes (faults*.go)
	}
	if h != nil {
		// The start and the first input written together.
		s.release(h)
		s.started(h)
	}
	s.commit(st.applied, m, st.rec, rev, st.dyn, &st.fx)
	s.settleUnchanged(ctx, st.unchanged, &entry{rec: st.rec, rev: rev, dyn: st.dyn})
}

// sendUpdate writes rec (encoded as data) over e's revision without
// waiting (see "Pipelined stores"); the answer commits what applying jobs
// gave (st), as apply does after its write, with h, the held start the
// write creates the record from, if any. Any failure applies jobs again,
// waiting, from a fresh read (or from h, still held).
func (s *shard) sendUpdate(ctx context.Context, jobs []job, m *engine.Machine, e *entry, h *heldStart, st *step, rec *protocol.RunRecord, data []byte) {
	runID := rec.ID
	done := *st
	err := s.st.send(jsRuns{s.c, s.st}.updateMsg(rec, data, e.rev), func(rev uint64, err error) {
		if err != nil {
			delete(s.cache, runID) // read afresh: the write may have been made
			s.waitFor(func() { s.apply(ctx, jobs) })
		} else {
			s.written(s.kvCtx(ctx), h, m, &done, rev)
		}
		s.unbusy(ctx, runID)
	})
	if err != nil {
		s.waitFor(func() { s.apply(ctx, jobs) })
		return
	}
	s.markBusy(runID)
}

// settleUnchanged acknowledges inputs that changed nothing, after
// re-publishing what the record owes when redrives says so (crash rule).
func (s *shard) settleUnchanged(ctx context.Context, jobs []job, e *entry) {
	var redrive []job
	for _, j := range jobs {
		if redrives(j, e.rec) {
			redrive = append(redrive, j)
			continue
		}
		s.acks <- pendingAck{msg: j.msg}
	}
	if len(redrive) > 0 {
		s.owed(ctx, redrive, e) // once for all of them
	}
}

func (s *shard) nakAll(jobs []job, err error) {
	for _, j := range jobs {
		s.nak(j, err)
	}
}

// commit caches the written record and publishes its effects; the input is
// acknowledged once the publishes are.
func (s *shard) commit(jobs []job, m *engine.Machine, rec *protocol.RunRecord, rev uint64, dyn *protocol.SplitSpec, fx *engine.Effects) {
	if cacheable(rec) { // consistent.go
		s.cache[rec.ID] = &entry{rec: rec, rev: rev, dyn: dyn}
	} else {
		delete(s.cache, rec.ID)
	}
	if fx.Ended {
		s.purgeTimer(rec, fx)
	}
	p := pendingAck{msg: jobs[0].msg}
	for _, j := range jobs[1:] {
		p.more = append(p.more, j.msg)
	}
	s.trace = jobs[0].msg.Headers()
	sent := s.sendCommand(m, rec, fx, p)
	if sent {
		s.publishCore(fx)
	} else {
		p.futures = s.publish(m, rec, fx)
	}
	s.trace = nil
	s.c.unschedule(fx)                // unschedule.go
	s.c.observe(jobs[0].msg, rec, fx) // runlog.go
	if !sent {
		s.acks <- p
	}
	if fx.Ended && s.c.cfg.OnEnded != nil {
		s.c.cfg.OnEnded(rec)
	}
}

// sendCommand sends fx's one command, when it is all fx stores (a chain's
// next task), as the record writes are sent: its PubAck comes back to the
// shard and is read by hand, and p is handed to the ack loop then, with
// the publish's failure if it failed. The asynchronous publish's
// bookkeeping (a future, its channels, a JSON acknowledgement) was a tenth
// of a coordinator's CPU in a chain. It reports false, having sent
// nothing, when fx stores more or the shard has as many stores in flight
// as it may.
func (s *shard) sendCommand(m *engine.Machine, rec *protocol.RunRecord, fx *engine.Effects, p pendingAck) bool {
	if len(fx.Commands) != 1 || len(fx.Timers) > 0 || m == nil || !s.canSend() {
		return false
	}
	bp := wirecodec.GetBuf() // reused once sent: a failure reads msg's subject only
	msg := s.commandMsgInto((*bp)[:0], m.Definition().Queue, rec, &fx.Commands[0])
	if msg == nil {
		return false // publish logs it, and acknowledges the input, as for any command it cannot encode
	}
	err := s.st.send(msg, func(_ uint64, err error) {
		if err != nil {
			p.futures = []jetstream.PubAckFuture{failedFuture{msg: msg, err: err}} // its subject only is read
		}
		s.acks <- p
	})
	wirecodec.PutBuf(bp, msg.Data)
	if err != nil {
		p.futures = []jetstream.PubAckFuture{failedFuture{msg: msg, err: err}}
		s.acks <- p
	}
	return true
}

// purgeTimer adds the timer that purges an ended run's store scope once
// its retention has passed, if the run used its store. Re-publishing it is
// harmless: a schedule replaces the one on its subject.
func (s *shard) purgeTimer(rec *protocol.RunRecord, fx *engine.Effects) {
	if rec.StoreUsed && s.c.cfg.RunStoreRetention > 0 {
		fx.Timers = append(fx.Timers, protocol.TimerFire{V: protocol.SchemaVersion, Kind: protocol.TimerPurge,
			RunID: rec.ID, At: rec.UpdatedAt + int64(s.c.cfg.RunStoreRetention)})
	}
}

// machineOf returns the machine of rec's definition version. When that
// version is no longer registered, it returns a nil machine (what
// engine.Apply and engine.Owed take for it) and gone, the error that says
// what to do about such a run.
func (s *shard) machineOf(ctx context.Context, rec *protocol.RunRecord) (m *engine.Machine, gone, err error) {
	m, err = s.c.defs.machine(ctx, rec.Workflow, rec.DefVersion)
	if errors.Is(err, errUnknownWorkflow) {
		return nil, fmt.Errorf("%w: run %s cannot move on until that version is registered again (start a worker that hosts it); "+
			"to end the run instead, cancel it (canoctl runs cancel %s)", err, rec.ID, rec.ID), nil
	}
	return m, nil, err
}

// owed re-publishes what the record owes and acknowledges jobs once the
// publishes are.
func (s *shard) owed(ctx context.Context, jobs []job, e *entry) {
	m, gone, err := s.machineOf(ctx, e.rec)
	if err == nil && gone != nil && !e.rec.Status.Terminal() {
		err = gone // an ended run owes its terminal event only, which needs no definition
	}
	if err != nil {
		s.nakAll(jobs, err)
		return
	}
	if err := s.loadSplitSpec(ctx, e); err != nil {
		s.nakAll(jobs, err)
		return
	}
	fx, err := engine.Owed(m, e.rec, e.dyn)
	if err != nil {
		s.nakAll(jobs, err)
		return
	}
	if e.rec.Status.Terminal() {
		// The purge timer commit set may be what a lost publish lost.
		s.purgeTimer(e.rec, &fx)
	}
	s.trace = jobs[0].msg.Headers()
	futures := s.publish(m, e.rec, &fx)
	s.trace = nil
	p := pendingAck{msg: jobs[0].msg, futures: futures}
	for _, j := range jobs[1:] {
		p.more = append(p.more, j.msg)
	}
	s.acks <- p
}

// loadFresh is load that also says whether the record was read from KV
// (fresh) rather than the cache.
func (s *shard) loadFresh(ctx context.Context, runID string) (*entry, bool, error) {
	if e, ok := s.cache[runID]; ok {
		return e, false, nil
	}
	e, err := s.load(ctx, runID)
	return e, true, err
}

func (s *shard) load(ctx context.Context, runID string) (*entry, error) {
	if e, ok := s.cache[runID]; ok {
		return e, nil
	}
	return s.readRecord(ctx, runID, 0) // consistent.go: "not found" is confirmed
}

func (s *shard) loadSplitSpec(ctx context.Context, e *entry) error {
	if e.rec.Split == nil || !e.rec.Split.Dynamic || e.dyn != nil {
		return nil
	}
	kve, err := s.c.branches.Get(ctx, layout.SplitSpecKey(e.rec.ID, e.rec.Step))
	if err != nil {
		return fmt.Errorf("coordinator: dynamic split spec of %s: %w", e.rec.ID, err)
	}
	spec, err := decodeSpec(kve.Value())
	if err != nil {
		return err
	}
	e.dyn = spec
	return nil
}

// publish publishes fx: the commands and timers (their futures are
// returned), then the notices and events.
func (s *shard) publish(m *engine.Machine, rec *protocol.RunRecord, fx *engine.Effects) []jetstream.PubAckFuture {
	futures := s.publishDurable(m, rec, fx)
	s.publishCore(fx)
	return futures
}

// publishDurable publishes fx's commands and timers, to streams.
func (s *shard) publishDurable(m *engine.Machine, rec *protocol.RunRecord, fx *engine.Effects) []jetstream.PubAckFuture {
	futures := make([]jetstream.PubAckFuture, 0, len(fx.Commands)+len(fx.Timers))
	var queue string
	if len(fx.Commands) > 0 {
		queue = m.Definition().Queue // (m is nil for a run whose version is gone, which dispatches nothing)
	}
	for i := range fx.Commands {
		if msg := s.commandMsg(queue, rec, &fx.Commands[i]); msg != nil {
			futures = append(futures, s.publishAsync(msg))
		}
	}
	return s.publishTimers(futures, fx)
}

// publishTimers publishes fx's timers, appending their futures.
func (s *shard) publishTimers(futures []jetstream.PubAckFuture, fx *engine.Effects) []jetstream.PubAckFuture {
	c := s.c
	for i := range fx.Timers {
		tf := &fx.Timers[i]
		data, err := wirecodec.Encode(tf)
		if err != nil {
			continue
		}
		name := layout.TimerName(tf.Kind, tf.Step)
		msg := &nats.Msg{Subject: c.names.TimerAtSubject(tf.RunID, name), Data: data, Header: nats.Header{}}
		msg.Header.Set("Nats-Schedule", "@at "+time.Unix(0, tf.At).UTC().Format(time.RFC3339Nano))
		msg.Header.Set("Nats-Schedule-Target", c.names.TimerFireSubject(tf.RunID, name))
		futures = append(futures, s.publishAsync(msg))
	}
	return futures
}

// commandMsg encodes cmd as the message to publish, or returns nil (and
// logs) when it cannot be encoded.
func (s *shard) commandMsg(queue string, rec *protocol.RunRecord, cmd *protocol.TaskCommand) *nats.Msg {
	return s.commandMsgInto(nil, queue, rec, cmd)
}

// commandMsgInto is commandMsg with cmd encoded into dst's spare capacity
// (a pooled buffer, for a store whose message is not kept once sent).
func (s *shard) commandMsgInto(dst []byte, queue string, rec *protocol.RunRecord, cmd *protocol.TaskCommand) *nats.Msg {
	c := s.c
	data, err := wirecodec.AppendEncode(dst, cmd)
	if err != nil {
		c.log.Error("encode command", "run_id", rec.ID, "err", err)
		return nil
	}
	// The header map is built directly (canonical keys): the result
	// comes back to this coordinator (resultrpc.go).
	msg := &nats.Msg{Subject: c.names.TaskSubject(queue, cmd.Task.Kind), Data: data, Header: nats.Header{
		jetstream.MsgIDHeader:      {layout.CommandMsgID(cmd.RunID, cmd.Step, cmd.Branch)},
		protocol.HeaderCoordinator: {c.id},
	}}
	tracectx.Copy(msg.Header, s.trace) // tracing.go
	return msg
}

// publishAsync publishes msg to a stream without waiting: its future
// reports the broker's acknowledgement (or the publish's failure).
func (s *shard) publishAsync(msg *nats.Msg) jetstream.PubAckFuture {
	f, err := s.c.js.PublishMsgAsync(msg)
	if err != nil {
		return failedFuture{msg: msg, err: err}
	}
	return f
}

// publishCore publishes fx's notices and events (core NATS).
func (s *shard) publishCore(fx *engine.Effects) {
	c := s.c
	for i := range fx.Notices {
		if data, err := wirecodec.Encode(&fx.Notices[i]); err == nil {
			_ = c.nc.Publish(c.names.NoticeCancelSubject(fx.Notices[i].RunID), data)
		}
	}
	for i := range fx.Events {
		ev := &fx.Events[i]
		c.publishEvent(c.names.EventSubject(ev.Workflow, ev.RunID, ev.Type), ev, layout.EventMsgID(ev.RunID, ev.Step, string(ev.Type)))
	}
}

func (s *shard) reply(j job, r *protocol.TriggerReply) { s.c.sendReply(j, r) } // replies.go

// reject answers (when asked), dead-letters and terminates an input, and
// logs it once.
func (s *shard) reject(j job, source string, err error) {
	s.c.warn(source+" "+j.runID+" "+err.Error(), "refused input", "source", source, "run_id", j.runID, "err", err)
	if j.trig != nil {
		s.reply(j, &protocol.TriggerReply{V: protocol.SchemaVersion, Error: fsmbridge.ErrorInfo(err)})
		s.rejectedEvent(j, err)
		err = toldIf(j, err) // inputs.go
	}
	s.acks <- s.c.deadLetter(source, j.msg, err)
}

func (s *shard) rejectedEvent(j job, err error) {
	ev := protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventRejected, RunID: j.runID,
		Workflow: j.trig.Workflow, Time: s.c.cfg.Now().UnixNano(), Error: fsmbridge.ErrorInfo(err)}
	wf := j.trig.Workflow
	if protocol.ValidToken(wf) != nil {
		wf = "_"
	}
	s.c.publishEvent(s.c.names.EventSubject(wf, j.runID, protocol.EventRejected), &ev, "")
}

// nak hands an input back for a later delivery, with a delay growing with
// its delivery count; once it has failed MaxDeliveries times it is
// dead-lettered with the error instead.
func (s *shard) nak(j job, err error) {
	if j.rpc {
		// No redelivery will come: the sender is told to send again.
		s.c.warn("trigger request "+err.Error(), "trigger request not handled; the sender is told to retry",
			"run_id", j.runID, "err", err)
		s.reply(j, &protocol.TriggerReply{V: protocol.SchemaVersion, RunID: j.runID, Retry: true, Error: fsmbridge.ErrorInfo(err)})
		_ = j.msg.Nak()
		return
	}
	if s.c.exhausted(j.delivered) {
		s.reject(j, j.source(), givenUp(j.delivered, err))
		return
	}
	if rm, ok := j.msg.(*requestMsg); ok && rm.result {
		// Answered with an error (resultrpc.go): the worker publishes the
		// result to the results stream, which delivers it again.
		s.c.warn("result request "+err.Error(), "result request not applied; the worker publishes it to the results stream",
			"run_id", j.runID, "err", err)
		_ = j.msg.Nak()
		return
	}
	delay := nakDelay(j.delivered)
	s.c.warn(j.source()+" "+j.runID+" "+err.Error(), "input will be retried",
		"source", j.source(), "run_id", j.runID, "delivery", j.delivered, "retry_in", delay, "err", err)
	_ = j.msg.NakWithDelay(delay)
}

// failedFuture stands in for a publish that failed before it was sent.
type failedFuture struct {
	msg *nats.Msg
	err error
}

func (f failedFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (f failedFuture) Err() <-chan error {
	ch := make(chan error, 1)
	ch <- f.err
	return ch
}
func (f failedFuture) Msg() *nats.Msg { return f.msg }

func encodeSpec(spec *protocol.SplitSpec) ([]byte, error) {
	r := &protocol.SplitSpecRecord{V: protocol.SchemaVersion, Spec: *spec}
	if spec.Common != nil {
		r.V = protocol.SchemaVersion2
	}
	return wirecodec.Encode(r)
}

func decodeSpec(data []byte) (*protocol.SplitSpec, error) {
	var r protocol.SplitSpecRecord
	if err := wirecodec.Decode(data, &r, 0); err != nil {
		return nil, err
	}
	return &r.Spec, nil
}

// purge removes an ended run's store scope once its retention has passed
// (a durable timer set when the run ended).
func (s *shard) purge(ctx context.Context, j job) {
	kctx := s.kvCtx(ctx)
	if err := kvpurge.PurgeRun(kctx, s.c.store, j.runID); err != nil {
		s.nak(j, err)
		return
	}
	s.acks <- pendingAck{msg: j.msg}
}
