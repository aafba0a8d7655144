package coordinator

import (
	"context"
	"fmt"
	"time"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Deferred start (Config.DeferStart). A trigger request on the fast path
// (requests.go) stores the run's first command, carrying the start facts,
// before its record; the record is the third step. With DeferStart the
// shard holds that start record instead of writing it (a held start) and
// writes it together with the run's first input: the input is applied to
// the held record and the result written with a compare-and-set on "no
// record yet" — one record write, where the start and the first result
// wrote two. The request is answered when that write is done; a run with
// no input within DeferStart has its start record written then, as
// without the mode, and its request answered.
//
// The crash rule is the one of requests.go, step 3 merely later: until the
// record is written the stored command is the run's durable input, and a
// result that finds no record (a coordinator killed while holding the
// start, a result that went to another coordinator) creates it from the
// start the command carried (startFromResult). The sender of a request
// never answered sends it again; the look-up does not find the run, the
// first command is published again (de-duplicated by its message id) and
// the start is held again, or the record, found by then, is answered as
// existing. A held start's record and a record created elsewhere meet in
// the compare-and-set: the write conflicts, and the request is answered
// from the record found (answerCreated).
//
// Held starts belong to the shard's loop goroutine; a stopping shard
// writes those it holds.

// heldStart is a run's start record, not written yet, and the trigger
// requests that wait for it.
type heldStart struct {
	jobs []job // the request, and the same request sent again meanwhile
	m    *engine.Machine
	rec  *protocol.RunRecord
	data []byte
	fx   engine.Effects // the start's effects; commands and timers are stored
	due  time.Time
	done bool // written (or handed back): the due queue skips it
}

// finishStart writes h's start record (the third step of requests.go)
// and answers its requests. It returns the run's record: h's, or the one
// found where the create conflicted (created elsewhere from the start the
// first result echoed, or an earlier run with this id). An error means the
// requests were handed back (the run still starts from its command).
func (s *shard) finishStart(ctx context.Context, h *heldStart) (*entry, error) {
	s.release(h)
	runID := h.rec.ID
	rev, err := s.kv.create(ctx, layout.RunKey(runID), h.data, "")
	if err != nil {
		if kvcas.Conflict(err) {
			e, rerr := s.readRecord(ctx, runID, 0)
			if rerr != nil {
				s.nakAll(h.jobs, rerr)
				h.drop()
				return nil, rerr
			}
			s.answerCreated(ctx, h, e)
			return e, nil
		}
		err = fmt.Errorf("coordinator: the run's record could not be written (%w); the run will still start "+
			"from its first command: send the request again with run_id %q to learn its state", err, runID)
		s.nakAll(h.jobs, err)
		h.drop()
		return nil, err
	}
	return s.created(h, rev), nil
}

// created caches h's record, written at revision rev, and answers h's
// requests; it returns the cached entry.
func (s *shard) created(h *heldStart, rev uint64) *entry {
	e := &entry{rec: h.rec, rev: rev}
	s.cache[h.rec.ID] = e
	s.started(h)
	return e
}

// writeHeldFirst writes the start record held for runID, if any, before a
// stored trigger for that run id, which then goes the way it would without
// the mode (answered "existing"). Requests and inputs of a later step meet
// a held start in request and apply, which write it the same way.
func (s *shard) writeHeldFirst(ctx context.Context, runID string) {
	if h := s.held[runID]; h != nil {
		_, _ = s.finishStart(ctx, h) // a failure has handed the requests back; the input finds no record
	}
}

// started answers h's requests with its (new) run and publishes the
// start's events, once its record is written.
func (s *shard) started(h *heldStart) {
	for _, j := range h.jobs {
		s.reply(j, &protocol.TriggerReply{V: protocol.SchemaVersion, RunID: h.rec.ID})
	}
	s.publishCore(&h.fx)
	s.c.observe(h.jobs[0].msg, h.rec, &h.fx) // runlog.go
	for _, j := range h.jobs {
		s.acks <- pendingAck{msg: j.msg}
	}
	h.drop()
}

// drop lets go of what an answered held start refers to (the due queue
// keeps it until it falls due).
func (h *heldStart) drop() { *h = heldStart{done: true, due: h.due} }

// answerCreated answers h's requests with e, the record found where h's
// create conflicted. A record with h's created-at is h's run, created from
// the start its first result echoed (another coordinator took the result):
// answered as new. Any other is a run that had the id before: existing.
// h is released already (finishStart).
func (s *shard) answerCreated(ctx context.Context, h *heldStart, e *entry) {
	if e.rec.CreatedAt == h.rec.CreatedAt && e.rec.Workflow == h.rec.Workflow && e.rec.IdempotencyKey == h.rec.IdempotencyKey {
		for _, j := range h.jobs {
			s.reply(j, &protocol.TriggerReply{V: protocol.SchemaVersion, RunID: h.rec.ID})
			s.acks <- pendingAck{msg: j.msg}
		}
	} else {
		for _, j := range h.jobs {
			s.answerExisting(ctx, j, e)
		}
	}
	h.drop()
}

// hold keeps h until its run's first input or DeferStart.
func (s *shard) hold(h *heldStart) {
	if s.held == nil {
		s.held = make(map[string]*heldStart)
	}
	h.due = time.Now().Add(s.c.cfg.DeferStart)
	s.held[h.rec.ID] = h
	s.dueq = append(s.dueq, h)
	if len(s.dueq) == 1 {
		s.armDue(time.Now())
	}
}

// release forgets h (written, or about to be): its requests are answered by
// the caller.
func (s *shard) release(h *heldStart) {
	if s.held[h.rec.ID] == h {
		delete(s.held, h.rec.ID)
	}
	h.done = true
}

// armDue sets the shard's due timer to the first held start still held.
func (s *shard) armDue(now time.Time) {
	for len(s.dueq) > 0 && s.dueq[0].done {
		s.dueq[0] = nil
		s.dueq = s.dueq[1:]
	}
	if len(s.dueq) == 0 {
		return
	}
	d := s.dueq[0].due.Sub(now)
	if s.dueTimer == nil {
		s.dueTimer = time.NewTimer(d)
		return
	}
	s.dueTimer.Reset(d)
}

// dueC is the channel of the due timer (nil: nothing held).
func (s *shard) dueC() <-chan time.Time {
	if s.dueTimer == nil || len(s.dueq) == 0 {
		return nil
	}
	return s.dueTimer.C
}

// writeDue writes the start records held DeferStart or longer.
func (s *shard) writeDue(ctx context.Context) {
	now := time.Now()
	kctx := s.kvCtx(ctx)
	var later []*heldStart
	for len(s.dueq) > 0 && (s.dueq[0].done || !s.dueq[0].due.After(now)) {
		h := s.dueq[0]
		s.dueq[0] = nil
		s.dueq = s.dueq[1:]
		if h.done {
			continue
		}
		if _, busy := s.busy[h.rec.ID]; busy {
			// Its first input's write, creating the record, is in flight
			// (pipelined stores, shard.go): looked at again later.
			h.due = now.Add(s.c.cfg.DeferStart)
			later = append(later, h)
			continue
		}
		_, _ = s.finishStart(kctx, h) // a failure has handed the requests back
	}
	s.dueq = append(s.dueq, later...)
	s.armDue(now)
}

// writeHeld writes every start record still held (the shard is stopping).
func (s *shard) writeHeld(ctx context.Context) {
	kctx := s.kvCtx(ctx)
	for _, h := range s.dueq {
		if !h.done {
			_, _ = s.finishStart(kctx, h) // a failure has handed the requests back
		}
	}
	s.dueq = nil
	if s.dueTimer != nil {
		s.dueTimer.Stop()
	}
}
