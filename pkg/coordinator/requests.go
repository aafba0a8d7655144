package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Trigger requests: a Trigger sent as a core NATS request on
// Names.RPCTriggerSubject (client.Trigger, `nats req`), taken by one
// coordinator of the queue group and answered once the run is durable. No
// stream stores the request, so it costs the broker one stored message per
// run fewer than a trigger published to the triggers stream.
//
// The crash rule without a stored trigger. A reply never claims a run that
// cannot complete, and what a run is owed is redriven without the sender
// sending again. The fast path (a first state that is a single task, an
// input the command carries) goes command first:
//
//  1. engine.Start builds the record and its effects (in memory);
//  2. the first command, carrying the start facts (TaskCommand.Start), and
//     the run's timers are published, and their PubAcks awaited (message
//     ids as for any command, so a second publish is de-duplicated);
//  3. the record is created (compare-and-set create);
//  4. the reply is sent, then the run's events.
//
// Killed before 2 completes: nothing may be stored and nothing was
// claimed; the sender's request times out and it sends again (same run
// id). Killed between 2 and 3: the command is stored and no record is;
// a worker runs it and its result echoes the start (TaskResult.Start), so
// the coordinator that gets the result creates the record from it (the
// same engine.Start at the same created-at: the record 3 would have
// written) and applies the result (startFromResult). No reply was sent;
// the run completes anyway. Killed between 3 and 4: the record and the
// command are stored, the run goes on; the sender's retry finds the record
// and is answered "existing". The same echo covers the race without a
// crash: a fast worker's result may reach another coordinator before 3;
// that coordinator creates the record and 3's create conflicts with a
// record of the same created-at, which is this request's run (answered as
// new). Within one coordinator, the request is handled by its run's shard,
// so a result of the run waits behind it.
//
// Timers go out with the command, so a run deadline timer may fire before
// the record exists (a total timeout shorter than the start): it is dropped
// as a purged run's timer is. The deadline still holds: applying the first
// result checks it (engine.Apply), and a record created from a result
// publishes the timer again.
//
// Where a reply may be lost, a run may be redriven: a retry of a request
// with a run id that the look-up does not find (the record not yet
// written) publishes the command again, de-duplicated within the tasks
// stream's duplicate window (45 s); past it a first step still running
// could run a second time, whose result then changes nothing (at least
// once, as after any worker crash).
//
// Other first states (a split, an exit state, an input larger than
// protocol.InlineInputMax that the worker would read from a record not yet
// written) are forwarded: the request is published to the triggers stream
// with its reply subject in Cano-Reply-To, and answered from there as a
// stored trigger is — exactly today's guarantees.
//
// A run id or idempotency key the sender chose is looked up first (a
// leader-confirmed read): a run that has it is answered "existing" and
// what its record owes is re-published, so a repeat after the broker's
// de-duplication window never runs a first step again. A run id the
// sender generated for the request (HeaderNewRunID, first sending) cannot
// exist and is not looked up.

// requestMsg stands in for the stream message of a trigger request, so the
// shard's paths (replies, dead letters, trace context, acknowledgements)
// serve requests too. Its subject is the triggers-stream subject of the
// request's workflow: a dead-lettered request is replayed into the stream.
// Acknowledging releases its slot among the requests in flight; a nak (the
// request could not be handled) answers, when nothing was answered yet,
// "send it again", since no redelivery will come.
//
// A result request (resultrpc.go) is one too, with result set: settling it
// answers it — empty when the result was handled, with
// protocol.HeaderResultError when it was handed back — and its slot is one
// of the result requests in flight.
type requestMsg struct {
	req     *nats.Msg
	subject string
	c       *Coordinator
	slots   chan struct{} // the slot taken for it: released when settled
	result  bool
	replied atomic.Bool
	settled atomic.Bool
}

var _ jetstream.Msg = (*requestMsg)(nil)

func (m *requestMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return nil, jetstream.ErrNotJSMessage
}
func (m *requestMsg) Data() []byte                     { return m.req.Data }
func (m *requestMsg) Headers() nats.Header             { return m.req.Header }
func (m *requestMsg) Subject() string                  { return m.subject }
func (m *requestMsg) Reply() string                    { return m.req.Reply }
func (m *requestMsg) Ack() error                       { m.settle(false); return nil }
func (m *requestMsg) DoubleAck(context.Context) error  { m.settle(false); return nil }
func (m *requestMsg) Nak() error                       { m.settle(true); return nil }
func (m *requestMsg) NakWithDelay(time.Duration) error { m.settle(true); return nil }
func (m *requestMsg) InProgress() error                { return nil }
func (m *requestMsg) Term() error                      { m.settle(false); return nil }
func (m *requestMsg) TermWithReason(string) error      { m.settle(false); return nil }

// settle releases the request's slot, once; failed answers a request not
// answered yet with "send it again".
func (m *requestMsg) settle(failed bool) {
	if m.settled.Swap(true) {
		return
	}
	if m.result {
		m.c.answerResult(m.req, failed) // resultrpc.go
	} else if failed && !m.replied.Load() {
		m.c.replyRequest(m, &protocol.TriggerReply{V: protocol.SchemaVersion, Retry: true,
			Error: fsmbridge.ErrorInfo(errors.New("coordinator: the trigger request could not be handled now; send it again with the same run id"))})
	}
	<-m.slots
}

// errOverloaded answers a request over Config.MaxRequests.
var errOverloaded = errors.New("coordinator: overloaded: too many trigger requests in flight; send the request again in a moment (same run id), or publish the trigger to the triggers stream")

// onRequest takes a trigger request: it decodes it and routes it to its
// run's shard, or answers at once (over the in-flight bound, or
// undecodable).
func (c *Coordinator) onRequest(req *nats.Msg) {
	wf := layout.WorkflowFromRPCTriggerSubject(c.names, req.Subject)
	select {
	case c.reqSlots <- struct{}{}:
	default:
		c.warn("trigger requests overloaded", "trigger request refused: too many in flight; the sender is told to retry",
			"max_requests", cap(c.reqSlots), "workflow", wf)
		c.replyRequest(&requestMsg{req: req}, &protocol.TriggerReply{V: protocol.SchemaVersion, Retry: true,
			Error: fsmbridge.ErrorInfo(errOverloaded)})
		return
	}
	rm := &requestMsg{req: req, subject: c.names.TriggerSubject(wf), c: c, slots: c.reqSlots}
	j := job{msg: rm, replyTo: req.Reply, rpc: true, fresh: req.Header.Get(protocol.HeaderNewRunID) != ""}
	trig, err := c.decodeTrigger(rm)
	if err != nil {
		c.rejectEarly("trigger", j, undecodable{err})
		return
	}
	j.trig = trig
	switch {
	case trig.IdempotencyKey != "":
		j.runID, j.fresh = layout.IdempotentRunID(trig.Workflow, trig.IdempotencyKey), false
	case trig.RunID != "":
		j.runID = trig.RunID
	default:
		j.runID, j.fresh = "r"+nuid.Next(), true
	}
	c.route(j)
}

// replyRequest answers m: in JSON when the request was JSON — said by its
// Content-Type, or, with none, a body that is a JSON object (a `nats req`
// that forgot the header reads why it was refused) — else msgpack.
func (c *Coordinator) replyRequest(m *requestMsg, r *protocol.TriggerReply) {
	if m.req.Reply == "" {
		return
	}
	m.replied.Store(true)
	if answerJSON(m.req.Header.Get(protocol.HeaderContentType), m.req.Data) { // replies.go
		_ = c.nc.Publish(m.req.Reply, wirecodec.AppendTriggerReplyJSON(nil, r))
		return
	}
	if data, err := wirecodec.Encode(r); err == nil {
		_ = c.nc.Publish(m.req.Reply, data)
	}
}

// request handles a trigger request in its run's shard (see the top of
// this file).
func (s *shard) request(ctx context.Context, j job) {
	c := s.c
	kctx := s.kvCtx(ctx)
	if h := s.held[j.runID]; h != nil {
		if bytes.Equal(j.msg.Data(), h.jobs[0].msg.Data()) {
			h.jobs = append(h.jobs, j) // sent again while its start is held: answered with it
			return
		}
		_, _ = s.finishStart(kctx, h) // another trigger with this run id: answered "existing" below
	}
	if !j.fresh {
		e, err := s.load(kctx, j.runID) // "not found" is confirmed with the leader
		switch {
		case err == nil:
			s.answerExisting(kctx, j, e)
			return
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			s.nak(j, err)
			return
		}
	}
	m, rec, fx, data, ok := s.start(kctx, j) // shard.go
	if !ok {
		return
	}
	if !commandFirst(&fx) {
		s.forward(j)
		return
	}
	fx.Commands[0].Start = &protocol.RunStart{DefVersion: rec.DefVersion, IdempotencyKey: rec.IdempotencyKey,
		Flow: rec.Flow, Slot: rec.Slot, CreatedAt: rec.CreatedAt}
	if len(fx.Timers) == 0 && s.canSend() {
		s.sendStart(ctx, j, m, rec, fx, data)
		return
	}
	// 2. The command and the timers, stored before the record.
	s.trace = j.msg.Headers()
	err := s.publishFirst(kctx, m, rec, &fx)
	s.trace = nil
	if err != nil {
		s.nak(j, firstCommandLost(err, j.runID))
		return
	}
	if hook := c.afterCommands; hook != nil && !hook(j.runID) {
		s.acks <- pendingAck{msg: j.msg} // a test's crash: no record, no reply
		return
	}
	// 3. The record (now, or with the run's first input: deferred.go),
	// 4. the reply, then the events.
	if c.cfg.DeferStart > 0 {
		s.hold(&heldStart{jobs: []job{j}, m: m, rec: rec, data: data, fx: fx})
		return
	}
	// Not held: h stays on the stack (one allocation fewer per request).
	h := heldStart{jobs: []job{j}, m: m, rec: rec, data: data, fx: fx}
	_, _ = s.finishStart(kctx, &h) // a failure has handed the request back
}

// sendStart is steps 2 to 4 with the stores sent without waiting (see
// "Pipelined stores" in shard.go): the command's answer sends the record
// (or, with DeferStart, holds it), whose answer sends the reply and the
// events. A failed command store hands the request back, as publishFirst's
// does; a failed record store is redone waiting (finishStart), which
// answers from the record found.
func (s *shard) sendStart(ctx context.Context, j job, m *engine.Machine, rec *protocol.RunRecord, fx engine.Effects, data []byte) {
	runID := j.runID
	s.trace = j.msg.Headers()
	msg := s.commandMsg(m.Definition().Queue, rec, &fx.Commands[0])
	s.trace = nil
	h := &heldStart{jobs: []job{j}, m: m, rec: rec, data: data, fx: fx}
	handBack := func(err error) { s.nak(j, firstCommandLost(err, runID)) }
	if msg == nil {
		handBack(errors.New("the command could not be encoded"))
		return
	}
	// finish writes the record waiting (finishStart: a failure has handed
	// the request back) and ends the run's store in flight.
	finish := func() {
		s.waitFor(func() { _, _ = s.finishStart(s.kvCtx(ctx), h) })
		s.unbusy(ctx, runID)
	}
	record := func(_ uint64, err error) {
		if err != nil {
			handBack(fmt.Errorf("publish on %s: %w", msg.Subject, err))
			s.unbusy(ctx, runID)
			return
		}
		if hook := s.c.afterCommands; hook != nil && !hook(runID) {
			s.acks <- pendingAck{msg: j.msg} // a test's crash: no record, no reply
			s.unbusy(ctx, runID)
			return
		}
		if s.c.cfg.DeferStart > 0 {
			s.hold(h) // the record, with the run's first input (deferred.go)
			s.unbusy(ctx, runID)
			return
		}
		if !s.canSend() {
			finish()
			return
		}
		err = s.st.send(runMsg(s.c.runs.Bucket(), layout.RunKey(runID), data, 0, ""), func(rev uint64, err error) {
			if err != nil {
				finish()
				return
			}
			s.created(h, rev)
			s.unbusy(ctx, runID)
		})
		if err != nil {
			finish()
		}
	}
	if err := s.st.send(msg, record); err != nil {
		handBack(fmt.Errorf("publish on %s: %w", msg.Subject, err))
		return
	}
	s.markBusy(runID)
}

// firstCommandLost is the error that hands back a trigger request whose
// first command may not be stored (err says why).
func firstCommandLost(err error, runID string) error {
	return fmt.Errorf("coordinator: the run's first command may not be stored (%w); the run may still "+
		"start: send the request again with run_id %q to learn its state", err, runID)
}

// commandFirst reports whether a run that starts with fx may publish its
// first command before its record: one command, of a single-task state,
// carrying its input (a worker reads a larger one from the record).
func commandFirst(fx *engine.Effects) bool {
	return len(fx.Commands) == 1 && fx.Commands[0].Branch == -1 && !fx.Commands[0].InputInRecord &&
		!fx.Ended && fx.PutSplitSpec == nil
}

// publishFirst publishes the run's first command and its timers, and
// waits for the broker to have stored each. The command goes as a request
// answered by the PubAck, as the record writes do (runskv.go): the shard
// waits for it at once, so the asynchronous publish's bookkeeping (a
// future, a timeout timer, a JSON acknowledgement) would be spent for
// nothing. The timers are published first, asynchronously, to be stored
// meanwhile.
func (s *shard) publishFirst(ctx context.Context, m *engine.Machine, rec *protocol.RunRecord, fx *engine.Effects) error {
	timers := s.publishTimers(nil, fx)
	var first error
	if msg := s.commandMsg(m.Definition().Queue, rec, &fx.Commands[0]); msg == nil {
		first = errors.New("the command could not be encoded")
	} else if _, err := s.st.store(ctx, msg); err != nil {
		first = fmt.Errorf("publish on %s: %w", msg.Subject, err)
	}
	for _, f := range timers {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if first == nil {
				first = fmt.Errorf("publish on %s: %w", f.Msg().Subject, err)
			}
		}
	}
	return first
}

// forward publishes a request the fast path does not take to the triggers
// stream, where it is handled (and answered on its reply subject) as a
// stored trigger; the request counts as handled once the broker stored it.
func (s *shard) forward(j job) {
	c := s.c
	msg := &nats.Msg{Subject: c.names.TriggerSubject(j.trig.Workflow), Data: j.msg.Data(), Header: nats.Header{}}
	for k, v := range j.msg.Headers() {
		if k != protocol.HeaderNewRunID {
			msg.Header[k] = v
		}
	}
	if j.replyTo != "" {
		msg.Header.Set(protocol.HeaderReplyTo, j.replyTo)
	}
	if j.trig.RunID != "" || j.trig.IdempotencyKey != "" {
		// As client.Trigger's stream publish: one stored trigger per run.
		msg.Header.Set(jetstream.MsgIDHeader, "trig:"+j.runID)
	}
	s.acks <- pendingAck{msg: j.msg, futures: []jetstream.PubAckFuture{s.publishAsync(msg)}}
}

// startFromResult creates the record of j's run, which has none, from the
// start its result echoes: the record the trigger request would have
// written (same definition version, created-at and input), whose first
// command this result answers. The run's timers and start event are
// published again (a schedule replaces the one on its subject); its first
// command is not. A create conflict means the request's coordinator (or
// another result) wrote it first: that record is returned.
func (s *shard) startFromResult(ctx context.Context, j job) (*entry, error) {
	st := j.res.Start
	m, err := s.c.defs.machine(ctx, st.Workflow, st.DefVersion)
	if err != nil {
		return nil, err
	}
	trig := &protocol.Trigger{V: protocol.SchemaVersion, Workflow: st.Workflow, InitialState: st.InitialState,
		DefVersion: st.DefVersion, Input: st.Input, InputFormat: st.InputFormat, IdempotencyKey: st.IdempotencyKey,
		Flow: st.Flow, Slot: st.Slot}
	rec, fx, err := engine.Start(m, trig, j.runID, time.Unix(0, st.CreatedAt))
	if err != nil {
		return nil, err
	}
	data, err := wirecodec.Encode(rec)
	if err != nil {
		return nil, err
	}
	rev, err := s.kv.create(ctx, layout.RunKey(j.runID), data, "")
	if err != nil {
		if kvcas.Conflict(err) {
			return s.readRecord(ctx, j.runID, 0)
		}
		return nil, err
	}
	s.c.log.Debug("run record created from its first result", "run_id", j.runID, "workflow", st.Workflow)
	fx.Commands = nil // the command j answers
	s.trace = j.msg.Headers()
	s.publish(m, rec, &fx)
	s.trace = nil
	e := &entry{rec: rec, rev: rev}
	s.cache[j.runID] = e
	return e, nil
}

// startJob returns the first of jobs that is a result echoing its run's
// start.
func startJob(jobs []job) (job, bool) {
	for _, j := range jobs {
		if j.res != nil && j.res.Start != nil && j.res.Step == 0 {
			return j, true
		}
	}
	return job{}, false
}
