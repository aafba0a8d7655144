package coordinator

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/dlq"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// The consume callbacks decode and route; shards do the rest.

func (c *Coordinator) onTrigger(msg jetstream.Msg) {
	md, _ := msg.Metadata()
	j := job{msg: msg, replyTo: msg.Headers().Get(protocol.HeaderReplyTo)}
	if md != nil {
		j.redelivered, j.delivered = md.NumDelivered > 1, md.NumDelivered
	}
	trig, err := c.decodeTrigger(msg)
	if err != nil {
		c.rejectEarly("trigger", j, undecodable{err})
		return
	}
	j.trig = trig
	switch {
	case trig.IdempotencyKey != "":
		j.runID = layout.IdempotentRunID(trig.Workflow, trig.IdempotencyKey)
	case trig.RunID != "":
		j.runID = trig.RunID
	case md != nil:
		j.runID = layout.StreamRunID(md.Sequence.Stream, md.Timestamp)
	default:
		c.rejectEarly("trigger", j, errors.New("coordinator: trigger without metadata"))
		return
	}
	c.route(j)
}

// undecodable is a trigger that did not decode. Its reply's category is
// configuration (cano's categories have none for a bad message, and a
// client matches fsm.ErrConfiguration), but it says what it is, so a person
// looks at the message rather than at the workflow; its dead letter's
// category says "malformed" (or the like).
type undecodable struct{ err error }

func (e undecodable) Error() string   { return "the trigger did not decode: " + e.err.Error() }
func (e undecodable) Unwrap() []error { return []error{fsm.ErrConfiguration, e.err} }

// decodeTrigger decodes a trigger: JSON with the Content-Type header (the
// workflow from the subject), else msgpack; its workflow must be the
// subject's.
func (c *Coordinator) decodeTrigger(msg jetstream.Msg) (*protocol.Trigger, error) {
	wf := layout.WorkflowFromTriggerSubject(c.names, msg.Subject())
	var trig *protocol.Trigger
	var err error
	if isJSON(msg) {
		trig, err = wirecodec.DecodeTriggerJSON(msg.Data(), wf, c.cfg.MaxPayload, c.cfg.Now())
	} else {
		trig = new(protocol.Trigger)
		err = jsonHint(msg, wirecodec.TriggerEnvelopeHint, wirecodec.Decode(msg.Data(), trig, c.cfg.MaxPayload)) // replies.go
	}
	if err == nil && wf != trig.Workflow {
		err = fmt.Errorf("%w: trigger for workflow %q published on %s", protocol.ErrInvalidField, trig.Workflow, msg.Subject())
	}
	return trig, err
}

func (c *Coordinator) onResult(msg jetstream.Msg) {
	j := c.base(msg)
	r := new(protocol.TaskResult)
	if err := wirecodec.Decode(msg.Data(), r, c.cfg.MaxPayload); err != nil {
		c.rejectEarly("result", j, err)
		return
	}
	j.res, j.runID = r, r.RunID
	if msg.Headers().Get(protocol.HeaderResent) != "" {
		// Its request may have been applied by a coordinator that died
		// before it published what the run owed (resultrpc.go).
		j.redelivered = true
	}
	c.route(j)
}

func (c *Coordinator) onControl(msg jetstream.Msg) {
	j := c.base(msg)
	if id := wirecodec.RunFromStartNowSubject(c.names, msg.Subject()); id != "" {
		if err := protocol.ValidToken(id); err != nil {
			c.rejectEarly("control", j, fmt.Errorf("%w: start-now subject %s: %w", protocol.ErrInvalidName, msg.Subject(), err))
			return
		}
		// Applied as the run's start timer fired ahead of its time
		// (applyInputs gives it the record's StartAt).
		j.timer, j.startNow, j.runID = &protocol.TimerFire{V: protocol.SchemaVersion, Kind: protocol.TimerStart, RunID: id}, true, id
		c.route(j)
		return
	}
	r, err := c.decodeCancel(msg) // replies.go
	if err != nil {
		c.rejectEarly("control", j, err)
		return
	}
	j.cancel, j.runID = r, r.RunID
	c.route(j)
}

func (c *Coordinator) onTimer(msg jetstream.Msg) {
	j := c.base(msg)
	r := new(protocol.TimerFire)
	if err := wirecodec.Decode(msg.Data(), r, c.cfg.MaxPayload); err != nil {
		c.rejectEarly("timer", j, err)
		return
	}
	j.timer, j.runID = r, r.RunID
	c.route(j)
}

func (c *Coordinator) base(msg jetstream.Msg) job {
	j := job{msg: msg}
	if md, err := msg.Metadata(); err == nil {
		j.redelivered, j.delivered = md.NumDelivered > 1, md.NumDelivered
	}
	return j
}

func (c *Coordinator) route(j job) {
	s := c.shardFor(j.runID)
	select {
	case s.in <- j:
	case <-c.done():
	}
}

// done is closed when the coordinator stops for good; read without the
// lock (Stop holds it while draining).
func (c *Coordinator) done() <-chan struct{} { return c.run.Done() }

// rejectEarly refuses an input that could not be decoded: it is answered
// (when the sender asked), dead-lettered with its reason, logged once, and
// terminated. Nothing else is blocked.
func (c *Coordinator) rejectEarly(source string, j job, err error) {
	c.warn(source+" "+err.Error(), "refused input", "source", source, "subject", j.msg.Subject(), "err", err)
	c.sendReply(j, &protocol.TriggerReply{V: protocol.SchemaVersion, Error: fsmbridge.ErrorInfo(err)})
	p := c.deadLetter(source, j.msg, toldIf(j, err))
	// Not routed through a shard: wait here (rare path).
	for _, f := range p.futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			c.log.Debug("dead letter not stored; the input is handed back", "subject", j.msg.Subject(), "err", err)
			_ = j.msg.NakWithDelay(nakDelay(numDelivered(j.msg)))
			return
		}
	}
	_ = j.msg.TermWithReason(p.term)
}

// told is the reason of a refused trigger whose sender was answered with
// it: its dead letter says so, since replaying it starts a run its sender
// was told had not started (and may have triggered again).
type told struct{ error }

func (t told) Error() string { return t.error.Error() + " (the sender was told so in its reply)" }
func (t told) Unwrap() error { return t.error }

// toldIf is err, as told when j is a trigger whose sender is answered
// (a request, or a publish with a reply-to header; a publish to the
// request subject without a reply subject is answered by no one).
func toldIf(j job, err error) error {
	if j.replyTo != "" {
		return told{err}
	}
	return err
}

func (c *Coordinator) deadLetter(source string, msg jetstream.Msg, reason error) pendingAck {
	c.metrics.deadLetter(source)
	letter := dlq.Letter(c.names, source, msg, reason, c.cfg.Now())
	f, err := c.js.PublishMsgAsync(letter)
	if err != nil {
		return pendingAck{msg: msg, futures: []jetstream.PubAckFuture{failedFuture{msg: letter, err: err}}}
	}
	return pendingAck{msg: msg, futures: []jetstream.PubAckFuture{f}, term: truncate(reason.Error(), 200)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
