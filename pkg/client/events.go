package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// EventType names a run lifecycle event. The values are the wire names (the
// last token of an event subject).
type EventType string

// Event types.
const (
	// EventScheduled: a run was triggered to start later (its Detail says
	// when: "starts at <RFC 3339 time>"); EventStarted follows at that time.
	EventScheduled EventType = "scheduled"
	// EventStarted: a run started.
	EventStarted EventType = "started"
	// EventState: a run entered a state.
	EventState EventType = "state"
	// EventSplit: a split began; Detail gives its branch count and join.
	EventSplit EventType = "split"
	// EventJoin: a join decided; Detail says how.
	EventJoin EventType = "join"
	// EventCompleted: a run completed (terminal; the event has Path and
	// the output).
	EventCompleted EventType = "completed"
	// EventFailed: a run failed (terminal; the event has Path and Err).
	EventFailed EventType = "failed"
	// EventCancelled: a run was cancelled (terminal).
	EventCancelled EventType = "cancelled"
	// EventBreaker: a shared circuit breaker changed state. RunID is the
	// breaker's name, Workflow is "_breaker", State the new [BreakerState]
	// and Detail the transition.
	EventBreaker EventType = "breaker"
	// EventRejected: a trigger was refused (Err says why; it is
	// dead-lettered). Workflow is "_" when the trigger's workflow was not a
	// valid name.
	EventRejected EventType = "rejected"
	// EventTaskRetried: a task attempt failed and will be retried; Detail
	// names the attempt, the delay and the attempt's error.
	EventTaskRetried EventType = "retry"
)

// EventTypes returns every event type, in a fresh slice.
func EventTypes() []EventType {
	return []EventType{EventScheduled, EventStarted, EventState, EventSplit, EventJoin, EventCompleted, EventFailed,
		EventCancelled, EventBreaker, EventRejected, EventTaskRetried}
}

// Terminal reports whether events of type t end a run.
func (t EventType) Terminal() bool {
	return t == EventCompleted || t == EventFailed || t == EventCancelled
}

// Event is one event of the events stream, as [EventStream.Next] returns
// it: a run (or a breaker) moved. Events are for observers; the run record
// ([Client.Get]) stays the truth.
type Event struct {
	// Type says what happened.
	Type EventType
	// RunID, Workflow, State, Step and Status describe the run just after
	// the event (see [EventBreaker] for breaker events).
	RunID    string
	Workflow string
	State    string
	Step     int
	Status   RunStatus
	// Time is when the coordinator (or worker) made the change.
	Time time.Time
	// Detail is type-specific text: the join decision, the split size, the
	// breaker transition.
	Detail string
	// Err is the error of a failed, cancelled or rejected run, or, on
	// the state event of a state a failure was routed to
	// (fsm.Workflow.OnFailure), that failure; nil otherwise. It matches
	// fsm's category sentinels with errors.Is, as [Run].Err does.
	Err error
	// Path is every state the run entered, on terminal events only.
	Path []string

	output []byte
}

// Output decodes the output of a completed run's event into v (a pointer),
// as [Run.Output] does. It returns an error matching [ErrNoValue] for an
// event without output (every type but [EventCompleted], and a completed
// run whose last task handed nothing on).
func (e *Event) Output(v any) error {
	return decodeOutput(e.output, v, fmt.Sprintf("%s event of run %s", e.Type, e.RunID))
}

// eventFrom converts a wire event.
func eventFrom(ev *protocol.Event) Event {
	return Event{
		Type:     EventType(ev.Type),
		RunID:    ev.RunID,
		Workflow: ev.Workflow,
		State:    ev.State,
		Step:     int(ev.Step),
		Status:   RunStatus(ev.Status),
		Time:     timeOf(ev.Time),
		Detail:   ev.Detail,
		Err:      fsmbridge.FromErrorInfo(ev.Error),
		Path:     ev.Path,
		output:   ev.Output,
	}
}

// ErrStreamStopped is returned by [EventStream.Next] after [EventStream.Stop].
var ErrStreamStopped = errors.New("client: event stream stopped")

// maxStoredSize bounds what Events, DeadLetters and Workflows decode. These
// are values of Cano's own streams and buckets, already bounded by their
// maximum message size (provision.Config.MaxMsgSize), not untrusted input:
// a dead letter of a too-large message is itself larger than the default
// decode limit.
const maxStoredSize = 64 << 20

// EventFilter selects the events of [Client.Events]; nil selects every event,
// live only.
//
// Events are core NATS messages, published fire-and-forget: a live watch
// sees what is published while it is subscribed, and an event may be
// missing (a reconnect, a watcher too slow to keep up). The run records
// ([Client.Get], [Client.List]) are the truth. Replay (Since, FromStart)
// reads the optional events capture stream (provision.Config.EventCapture,
// coordinator -event-capture, on in dev mode): an in-memory stream with a
// bounded retention (EventsMaxAgeDefault, EventsMaxBytesDefault), so it is
// best-effort recent history, not an audit log.
type EventFilter struct {
	// Workflow selects one workflow's events; "" selects all. Breaker
	// events have the workflow "_breaker"; rejected triggers whose
	// workflow is not a valid name have the workflow "_".
	Workflow string
	// RunID selects one run's events (or one breaker's, by its name); ""
	// selects all.
	RunID string
	// Types selects these event types; empty selects all.
	Types []EventType
	// Since replays the captured events stored at or after this time,
	// then continues live. It needs the capture stream: without it Events
	// returns an error matching [ErrNoEventCapture]. The zero value means
	// live only: events published after Events returns.
	Since time.Time
	// FromStart replays every event the capture stream still retains,
	// then continues live; like Since it needs the capture stream. It may
	// not be combined with Since.
	FromStart bool
}

// replay reports whether f asks for past events.
func (f *EventFilter) replay() bool { return f.FromStart || !f.Since.IsZero() }

// ErrNoEventCapture is matched (with errors.Is) by the error of
// [Client.Events] asked to replay past events (EventFilter Since or
// FromStart) in a deployment without the events capture stream.
var ErrNoEventCapture = errors.New("client: no events capture stream")

func (f *EventFilter) validate() error {
	if f.Workflow != "" {
		if err := protocol.ValidToken(f.Workflow); err != nil {
			return fmt.Errorf("client: EventFilter.Workflow: %w", err)
		}
	}
	if f.RunID != "" {
		if err := protocol.ValidToken(f.RunID); err != nil {
			return fmt.Errorf("client: EventFilter.RunID: %w", err)
		}
	}
	for _, t := range f.Types {
		if err := protocol.ValidToken(string(t)); err != nil {
			return fmt.Errorf("client: EventFilter.Types: %w", err)
		}
	}
	if f.FromStart && !f.Since.IsZero() {
		return errors.New("client: EventFilter: FromStart and Since are exclusive")
	}
	return nil
}

// subjects returns the filter subjects, one per distinct type.
func (f *EventFilter) subjects(names protocol.Names) []string {
	wf, run := f.Workflow, f.RunID
	if wf == "" {
		wf = "*"
	}
	if run == "" {
		run = "*"
	}
	if len(f.Types) == 0 {
		return []string{names.EventSubject(wf, run, "*")}
	}
	types := slices.Clone(f.Types)
	slices.Sort(types)
	types = slices.Compact(types) // overlapping filter subjects are refused
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = names.EventSubject(wf, run, protocol.EventType(t))
	}
	return out
}

// Events starts watching events and returns the stream of decoded events
// matching f (nil: every event, live only). The watch starts before
// Events returns, so an event published after that (of a run triggered
// after the call, say) is delivered. Call [EventStream.Stop] when done.
//
// A live watch (no Since, no FromStart) is a core NATS subscription: it
// works with or without the events capture stream, adds no work to the
// server's streams, and events arrive in the order the server received
// them. Its events are at most once: one published while the connection
// is down, or while Next falls more than EventBufferDefault events behind,
// is missed (counted in [EventStream.Missed]). Await a run's end with
// [Client.Await], which does not depend on any one event.
//
// A replay (Since or FromStart) reads the capture stream with an
// ephemeral ordered consumer: the past events it retains, then live ones,
// in stream order without gaps or duplicates, and the consumer is
// recreated transparently after a reconnect. Without the capture stream
// it returns an error matching [ErrNoEventCapture]. Read the limits on
// history in [EventFilter].
//
// An invalid filter gives an error wrapping protocol.ErrInvalidName (or
// naming the conflicting fields). If ctx has no deadline, Config.Timeout
// applies to setting up the watch; ctx does not bound the stream.
//
// Example:
//
//	st, err := cl.Events(ctx, &client.EventFilter{Workflow: "order",
//		Types: []client.EventType{client.EventFailed}})
//	if err != nil {
//		return err
//	}
//	defer st.Stop()
//	for {
//		ev, err := st.Next(ctx)
//		if err != nil {
//			return err // ctx ended, or the stream failed
//		}
//		log.Printf("run %s failed in %s: %v", ev.RunID, ev.State, ev.Err)
//	}
func (c *Client) Events(ctx context.Context, f *EventFilter) (*EventStream, error) {
	if f == nil {
		f = &EventFilter{}
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	if !f.replay() {
		return c.liveEvents(ctx, f)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: f.subjects(c.names), DeliverPolicy: jetstream.DeliverAllPolicy}
	if !f.Since.IsZero() {
		since := f.Since
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &since
	}
	cons, err := c.js.OrderedConsumer(ctx, layout.EventsStream(c.names), cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: replaying past events (EventFilter Since or FromStart) needs the stream %s, "+
			"which this deployment does not have; start the coordinators with -event-capture "+
			"(provision.Config.EventCapture) to keep recent events, or watch live events only: %w",
			ErrNoEventCapture, layout.EventsStream(c.names), err)
	}
	if err != nil {
		return nil, fmt.Errorf("client: events: %w", err)
	}
	// Messages creates the server consumer now, which fixes the start
	// point of the replay.
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("client: events: %w", err)
	}
	return &EventStream{it: it}, nil
}

// EventBufferDefault is how many events a live [EventStream] holds for
// Next before it starts missing events.
const EventBufferDefault = 8192

// liveEvents subscribes to f's subjects (core NATS), all into one channel
// so that events keep the order the connection received them in.
func (c *Client) liveEvents(ctx context.Context, f *EventFilter) (*EventStream, error) {
	s := &EventStream{ch: make(chan *nats.Msg, EventBufferDefault), stop: make(chan struct{})}
	for _, subj := range f.subjects(c.names) {
		sub, err := c.nc.ChanSubscribe(subj, s.ch)
		if err != nil {
			s.unsubscribe()
			return nil, fmt.Errorf("client: events: %w", err)
		}
		s.subs = append(s.subs, sub)
	}
	s.closed = s.subs[0].StatusChanged(nats.SubscriptionClosed)
	// The subscriptions are registered with the server once they are
	// flushed: only then is "events published after Events returns" true.
	if err := c.nc.FlushWithContext(ctx); err != nil {
		s.unsubscribe()
		return nil, fmt.Errorf("client: events: %w", err)
	}
	return s, nil
}

// EventStream is a stream of decoded events, returned by [Client.Events].
// Next may not be called concurrently; Stop, Skipped and Missed may be
// called from any goroutine.
type EventStream struct {
	// A replay: an ordered consumer on the capture stream.
	it jetstream.MessagesContext
	// A live watch: core subscriptions delivering into ch; closed reports
	// the subscriptions' end (the connection closed).
	subs   []*nats.Subscription
	ch     chan *nats.Msg
	closed <-chan nats.SubStatus
	stop   chan struct{}

	skipped atomic.Int64
	stopped atomic.Bool
}

// Next blocks until the next matching event arrives and returns it. It
// returns ctx's error (wrapped) when ctx ends, [ErrStreamStopped] after
// Stop, and an error if the stream fails for good (the connection closed,
// the capture stream of a replay deleted). A message that does not decode
// as an event is skipped and counted in Skipped; it never ends the
// stream.
func (s *EventStream) Next(ctx context.Context) (Event, error) {
	for {
		if s.stopped.Load() {
			return Event{}, ErrStreamStopped
		}
		data, err := s.next(ctx)
		if err != nil {
			switch {
			case s.stopped.Load():
				return Event{}, ErrStreamStopped
			case ctx.Err() != nil:
				return Event{}, fmt.Errorf("client: events: %w", ctx.Err())
			}
			return Event{}, fmt.Errorf("client: events: %w", err)
		}
		var ev protocol.Event
		if wirecodec.Decode(data, &ev, maxStoredSize) != nil {
			s.skipped.Add(1)
			continue
		}
		return eventFrom(&ev), nil
	}
}

// errWatchClosed ends a live watch whose connection closed.
var errWatchClosed = errors.New("the connection closed")

// next returns the next message's data.
func (s *EventStream) next(ctx context.Context) ([]byte, error) {
	if s.it != nil {
		msg, err := s.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, err
		}
		return msg.Data(), nil
	}
	select {
	case m := <-s.ch:
		return m.Data, nil
	default:
	}
	select {
	case m := <-s.ch:
		return m.Data, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.stop:
		return nil, ErrStreamStopped
	case <-s.closed:
		return nil, errWatchClosed
	}
}

// Skipped returns how many messages on the event subjects did not decode
// as events and were skipped so far.
func (s *EventStream) Skipped() int64 { return s.skipped.Load() }

// Missed returns how many events a live watch dropped so far because Next
// fell more than EventBufferDefault events behind (the connection's
// slow-consumer limit). It is always 0 for a replay, which reads at its
// own pace.
func (s *EventStream) Missed() int64 {
	var n int64
	for _, sub := range s.subs {
		if d, err := sub.Dropped(); err == nil {
			n += int64(d)
		}
	}
	return n
}

// Stop ends the stream and releases its consumer or subscriptions. Safe
// to call more than once and concurrently with Next, which then returns
// [ErrStreamStopped].
func (s *EventStream) Stop() {
	if s.stopped.CompareAndSwap(false, true) {
		if s.it != nil {
			s.it.Stop()
			return
		}
		close(s.stop)
		s.unsubscribe()
	}
}

func (s *EventStream) unsubscribe() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}
