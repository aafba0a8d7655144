package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

const (
	kvTimeout     = 5 * time.Second
	retryNakDelay = 250 * time.Millisecond
	maxCASRetries = 16
)

// job is one decoded input, handled by the shard that owns its run.
type job struct {
	stop        bool
	msg         jetstream.Msg
	runID       string
	redelivered bool
	replyTo     string
	trig        *protocol.Trigger
	res         *protocol.TaskResult
	timer       *protocol.TimerFire
	cancel      *protocol.CancelRequest
}

// entry is a cached run record with its KV revision.
type entry struct {
	rec *protocol.RunRecord
	rev uint64
	dyn *protocol.SplitSpec
}

// pendingAck acknowledges (or terminates, or naks) an input once the
// publishes it caused are acknowledged by the server.
type pendingAck struct {
	stop    bool
	msg     jetstream.Msg
	futures []jetstream.PubAckFuture
	term    string
}

type shard struct {
	c     *Coordinator
	id    int
	in    chan job
	acks  chan pendingAck
	cache map[string]*entry // owned by the loop goroutine
}

func newShard(c *Coordinator, id int) *shard {
	return &shard{c: c, id: id, in: make(chan job, ShardQueueDefault),
		acks: make(chan pendingAck, ShardQueueDefault), cache: make(map[string]*entry)}
}

func (s *shard) loop(ctx context.Context) {
	defer s.c.wg.Done()
	defer func() { s.acks <- pendingAck{stop: true} }()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-s.in:
			if j.stop {
				return
			}
			s.handle(ctx, j)
		}
	}
}

func (s *shard) ackLoop() {
	defer s.c.wg.Done()
	for p := range s.acks {
		if p.stop {
			return
		}
		failed := false
		for _, f := range p.futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				s.c.log.Warn("publish failed; input will be redelivered", "subject", f.Msg().Subject, "err", err)
				failed = true
			}
		}
		switch {
		case failed:
			_ = p.msg.NakWithDelay(retryNakDelay)
		case p.term != "":
			_ = p.msg.TermWithReason(p.term)
		default:
			_ = p.msg.Ack()
		}
	}
}

func (s *shard) handle(ctx context.Context, j job) {
	if j.trig != nil {
		s.trigger(ctx, j)
		return
	}
	s.apply(ctx, j)
}

func (s *shard) trigger(ctx context.Context, j job) {
	c := s.c
	kctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	m, err := c.defs.machine(kctx, j.trig.Workflow, j.trig.DefVersion)
	if err != nil {
		if errors.Is(err, fsm.ErrConfiguration) {
			s.reject(j, "trigger", err)
			return
		}
		s.nak(j, err)
		return
	}
	now := c.cfg.Now()
	rec, fx, err := fsm.Start(m, j.trig, j.runID, now)
	if err != nil {
		s.reject(j, "trigger", err)
		return
	}
	data, err := protocol.Encode(rec)
	if err != nil {
		s.reject(j, "trigger", err)
		return
	}
	rev, err := c.runs.Create(kctx, protocol.RunKey(j.runID), data)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			s.existing(kctx, j, m)
			return
		}
		s.nak(j, err)
		return
	}
	s.reply(j.replyTo, &protocol.TriggerReply{V: protocol.SchemaVersion, RunID: j.runID})
	s.commit(j, m, rec, rev, nil, &fx)
}

// existing answers a trigger whose run already exists (same run id or
// idempotency key): nothing starts; a redelivery re-publishes what is owed.
func (s *shard) existing(ctx context.Context, j job, m *fsm.Machine) {
	e, err := s.load(ctx, j.runID)
	if err != nil {
		s.nak(j, err)
		return
	}
	s.reply(j.replyTo, &protocol.TriggerReply{V: protocol.SchemaVersion, RunID: j.runID, Existing: true})
	if !j.redelivered {
		s.acks <- pendingAck{msg: j.msg}
		return
	}
	s.owed(ctx, j, e)
}

func (s *shard) apply(ctx context.Context, j job) {
	c := s.c
	kctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	e, fresh, err := s.loadFresh(kctx, j.runID)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if j.res != nil {
				s.reject(j, "result", fmt.Errorf("%w: result for unknown run %q", fsm.ErrWorkflow, j.runID))
			} else if j.cancel != nil {
				s.reject(j, "control", fmt.Errorf("%w: cancel for unknown run %q", fsm.ErrWorkflow, j.runID))
			} else {
				s.acks <- pendingAck{msg: j.msg} // a timer of a run that has been purged
			}
			return
		}
		s.nak(j, err)
		return
	}
	for attempt := 0; ; attempt++ {
		m, err := c.defs.machine(kctx, e.rec.Workflow, e.rec.DefVersion)
		if err != nil {
			s.nak(j, err)
			return
		}
		if err := s.loadSplitSpec(kctx, e); err != nil {
			s.nak(j, err)
			return
		}
		in := fsm.Input{Result: j.res, Timer: j.timer, Cancel: j.cancel, DynamicSplit: e.dyn}
		rec, fx, err := fsm.Apply(m, e.rec, in, c.cfg.Now())
		if err != nil {
			s.nak(j, err)
			return
		}
		if !fx.Changed && !fresh {
			// The cached record may be stale (another coordinator moved the
			// run on): re-read it before calling the input a duplicate.
			delete(s.cache, j.runID)
			if e, err = s.load(kctx, j.runID); err != nil {
				s.nak(j, err)
				return
			}
			fresh = true
			continue
		}
		if !fx.Changed {
			if j.redelivered {
				s.owed(kctx, j, e)
				return
			}
			s.acks <- pendingAck{msg: j.msg}
			return
		}
		if fx.PutSplitSpec != nil {
			spec := &protocol.SplitSpec{Tasks: fx.PutSplitSpec.Tasks, Join: fx.PutSplitSpec.Join}
			data, err := encodeSpec(spec)
			if err == nil {
				_, err = c.branches.Put(kctx, protocol.SplitSpecKey(rec.ID, rec.Step), data)
			}
			if err != nil {
				s.nak(j, err)
				return
			}
		}
		data, err := protocol.Encode(rec)
		if err != nil {
			s.reject(j, "result", err)
			return
		}
		rev, err := c.runs.Update(kctx, protocol.RunKey(rec.ID), data, e.rev)
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
				if attempt >= maxCASRetries {
					s.nak(j, err)
					return
				}
				delete(s.cache, j.runID)
				if e, err = s.load(kctx, j.runID); err != nil {
					s.nak(j, err)
					return
				}
				fresh = true
				continue
			}
			s.nak(j, err)
			return
		}
		dyn := e.dyn
		if fx.PutSplitSpec != nil {
			dyn = fx.PutSplitSpec
		}
		s.commit(j, m, rec, rev, dyn, &fx)
		return
	}
}

// commit caches the written record and publishes its effects; the input is
// acknowledged once the publishes are.
func (s *shard) commit(j job, m *fsm.Machine, rec *protocol.RunRecord, rev uint64, dyn *protocol.SplitSpec, fx *fsm.Effects) {
	if rec.Status.Terminal() {
		delete(s.cache, rec.ID)
	} else {
		s.cache[rec.ID] = &entry{rec: rec, rev: rev, dyn: dyn}
	}
	futures := s.publish(m, rec, fx)
	s.acks <- pendingAck{msg: j.msg, futures: futures}
	if fx.Ended && s.c.cfg.OnEnded != nil {
		s.c.cfg.OnEnded(rec)
	}
}

func (s *shard) owed(ctx context.Context, j job, e *entry) {
	m, err := s.c.defs.machine(ctx, e.rec.Workflow, e.rec.DefVersion)
	if err != nil {
		s.nak(j, err)
		return
	}
	if err := s.loadSplitSpec(ctx, e); err != nil {
		s.nak(j, err)
		return
	}
	fx, err := fsm.Owed(m, e.rec, e.dyn)
	if err != nil {
		s.nak(j, err)
		return
	}
	futures := s.publish(m, e.rec, &fx)
	s.acks <- pendingAck{msg: j.msg, futures: futures}
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
	kve, err := s.c.runs.Get(ctx, protocol.RunKey(runID))
	if err != nil {
		return nil, err
	}
	var rec protocol.RunRecord
	if err := protocol.Decode(kve.Value(), &rec, 0); err != nil {
		return nil, fmt.Errorf("coordinator: run record %s: %w", runID, err)
	}
	e := &entry{rec: &rec, rev: kve.Revision()}
	if !rec.Status.Terminal() {
		s.cache[runID] = e
	}
	return e, nil
}

func (s *shard) loadSplitSpec(ctx context.Context, e *entry) error {
	if e.rec.Split == nil || !e.rec.Split.Dynamic || e.dyn != nil {
		return nil
	}
	kve, err := s.c.branches.Get(ctx, protocol.SplitSpecKey(e.rec.ID, e.rec.Step))
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

func (s *shard) publish(m *fsm.Machine, rec *protocol.RunRecord, fx *fsm.Effects) []jetstream.PubAckFuture {
	c := s.c
	futures := make([]jetstream.PubAckFuture, 0, len(fx.Commands)+len(fx.Timers))
	queue := m.Definition().Queue
	for i := range fx.Commands {
		cmd := &fx.Commands[i]
		data, err := protocol.Encode(cmd)
		if err != nil {
			c.log.Error("encode command", "run_id", rec.ID, "err", err)
			continue
		}
		msg := &nats.Msg{Subject: c.names.TaskSubject(queue, cmd.Task.Kind), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, protocol.CommandMsgID(cmd.RunID, cmd.Step, cmd.Branch))
		if f, err := c.js.PublishMsgAsync(msg); err == nil {
			futures = append(futures, f)
		} else {
			futures = append(futures, failedFuture{msg: msg, err: err})
		}
	}
	for i := range fx.Timers {
		tf := &fx.Timers[i]
		data, err := protocol.Encode(tf)
		if err != nil {
			continue
		}
		name := protocol.TimerName(tf.Kind, tf.Step)
		msg := &nats.Msg{Subject: c.names.TimerAtSubject(tf.RunID, name), Data: data, Header: nats.Header{}}
		msg.Header.Set("Nats-Schedule", "@at "+time.Unix(0, tf.At).UTC().Format(time.RFC3339Nano))
		msg.Header.Set("Nats-Schedule-Target", c.names.TimerFireSubject(tf.RunID, name))
		if f, err := c.js.PublishMsgAsync(msg); err == nil {
			futures = append(futures, f)
		} else {
			futures = append(futures, failedFuture{msg: msg, err: err})
		}
	}
	for i := range fx.Notices {
		if data, err := protocol.Encode(&fx.Notices[i]); err == nil {
			_ = c.nc.Publish(c.names.NoticeCancelSubject(fx.Notices[i].RunID), data)
		}
	}
	for i := range fx.Events {
		ev := &fx.Events[i]
		data, err := protocol.Encode(ev)
		if err != nil {
			continue
		}
		msg := &nats.Msg{Subject: c.names.EventSubject(ev.Workflow, ev.RunID, ev.Type), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("ev:%s:%d:%s", ev.RunID, ev.Step, ev.Type))
		_ = c.nc.PublishMsg(msg)
	}
	return futures
}

func (s *shard) reply(to string, r *protocol.TriggerReply) {
	if to == "" {
		return
	}
	if data, err := protocol.Encode(r); err == nil {
		_ = s.c.nc.Publish(to, data)
	}
}

// reject answers (when asked), dead-letters and terminates an input.
func (s *shard) reject(j job, source string, err error) {
	if j.trig != nil {
		s.reply(j.replyTo, &protocol.TriggerReply{V: protocol.SchemaVersion, Error: fsm.ErrorInfo(err)})
		s.rejectedEvent(j, err)
	}
	s.acks <- s.c.deadLetter(source, j.msg, err)
}

func (s *shard) rejectedEvent(j job, err error) {
	ev := protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventRejected, RunID: j.runID,
		Workflow: j.trig.Workflow, Time: s.c.cfg.Now().UnixNano(), Error: fsm.ErrorInfo(err)}
	wf := j.trig.Workflow
	if protocol.ValidToken(wf) != nil {
		wf = "_"
	}
	if data, e := protocol.Encode(&ev); e == nil {
		_ = s.c.nc.Publish(s.c.names.EventSubject(wf, j.runID, protocol.EventRejected), data)
	}
}

func (s *shard) nak(j job, err error) {
	s.c.log.Warn("input will be retried", "run_id", j.runID, "err", err)
	_ = j.msg.NakWithDelay(retryNakDelay)
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
	return protocol.Encode(&protocol.SplitSpecRecord{V: protocol.SchemaVersion, Spec: *spec})
}

func decodeSpec(data []byte) (*protocol.SplitSpec, error) {
	var r protocol.SplitSpecRecord
	if err := protocol.Decode(data, &r, 0); err != nil {
		return nil, err
	}
	return &r.Spec, nil
}
