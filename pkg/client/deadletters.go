package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrDeadLetterNotFound is returned by [Client.DeleteDeadLetter] and
// [Client.Replay] for a sequence that holds no dead letter (never did, or
// already deleted, replayed or expired).
var ErrDeadLetterNotFound = errors.New("client: dead letter not found")

// DeadLetter is one refused message in the dead-letter stream.
type DeadLetter struct {
	// Seq is the entry's sequence in the dead-letter stream: pass it to
	// [Client.Replay] or [Client.DeleteDeadLetter].
	Seq uint64
	// Source names where the message was refused: "trigger", "result",
	// "control", "timer" or "task".
	Source string
	// Subject is the subject the refused message was published on.
	Subject string
	// Reason is the error that refused it.
	Reason string
	// Category classifies Reason: "malformed", "too_large",
	// "schema_version", "missing_field", "invalid_field", "invalid_name"
	// (it did not decode or validate), or "rejected" (it decoded but was
	// refused, e.g. an unknown workflow or state).
	Category string
	// Time is when it was dead-lettered.
	Time time.Time
	// Headers and Data are the refused message's headers (first value of
	// each) and payload.
	Headers map[string]string
	Data    []byte
}

// DeadLetterFilter selects the entries of [Client.DeadLetters]; nil lists
// every entry.
type DeadLetterFilter struct {
	// Source selects one source ("trigger", "result", ...); "" selects all.
	Source string
	// Limit caps the result to the newest Limit entries; 0 means no cap.
	Limit int
}

// DeadLetters lists the dead-letter stream's entries matching f (nil: all),
// newest first, so with a Limit the most recent failures come back. It reads
// every entry of the selected source (an ephemeral ordered consumer), so it
// is meant for tools, not hot paths. An entry that does not decode (something
// else published on a dead-letter subject) is listed with Category
// "malformed", the decode error as Reason, and the raw bytes as Data; it has
// no Subject and cannot be replayed.
//
// The stream keeps entries for provision.DLQMaxAgeDefault. If ctx has no
// deadline, Config.Timeout applies.
func (c *Client) DeadLetters(ctx context.Context, f *DeadLetterFilter) ([]DeadLetter, error) {
	if f == nil {
		f = &DeadLetterFilter{}
	}
	if f.Limit < 0 {
		return nil, fmt.Errorf("client: DeadLetterFilter.Limit must not be negative, got %d", f.Limit)
	}
	subject := c.names.DLQWildcard()
	if f.Source != "" {
		if err := protocol.ValidToken(f.Source); err != nil {
			return nil, fmt.Errorf("client: DeadLetterFilter.Source: %w", err)
		}
		subject = c.names.DLQSubject(f.Source)
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	cons, err := c.js.OrderedConsumer(ctx, layout.DLQStream(c.names), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("client: dead letters: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("client: dead letters: %w", err)
	}
	defer it.Stop()
	info := cons.CachedInfo()
	if info == nil {
		if info, err = cons.Info(ctx); err != nil {
			return nil, fmt.Errorf("client: dead letters: %w", err)
		}
	}
	pending := info.NumPending
	// Oldest first from the stream; keep the newest Limit in a ring.
	var out []DeadLetter
	next := 0
	for pending > 0 {
		msg, err := nextOrIdle(ctx, it)
		if errors.Is(err, nats.ErrTimeout) {
			// Entries deleted while we read leave the count high: ask
			// the server whether anything is still owed.
			info, err = cons.Info(ctx)
			if err != nil {
				return nil, fmt.Errorf("client: dead letters: %w", err)
			}
			pending = info.NumPending
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("client: dead letters: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("client: dead letters: %w", err)
		}
		pending = md.NumPending
		e := deadLetterEntry(md.Sequence.Stream, md.Timestamp, msg.Subject(), msg.Data())
		if f.Limit == 0 || len(out) < f.Limit {
			out = append(out, e)
			continue
		}
		out[next] = e
		next = (next + 1) % f.Limit
	}
	// Rotate the ring so it is oldest first, then reverse it.
	out = append(out[next:], out[:next]...)
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// idleWait bounds one wait for the next dead letter before DeadLetters
// re-checks what is still pending.
const idleWait = time.Second

// nextOrIdle waits for the next message for at most idleWait, or less if
// ctx ends sooner, returning nats.ErrTimeout when idle.
func nextOrIdle(ctx context.Context, it jetstream.MessagesContext) (jetstream.Msg, error) {
	wait := idleWait
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left < wait {
			if left <= 0 {
				return nil, ctx.Err()
			}
			wait = left
		}
	}
	msg, err := it.Next(jetstream.NextMaxWait(wait))
	if errors.Is(err, nats.ErrTimeout) && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return msg, err
}

// deadLetterEntry decodes a dead-letter message stored at seq.
func deadLetterEntry(seq uint64, stored time.Time, subject string, data []byte) DeadLetter {
	var dl protocol.DeadLetter
	if err := wirecodec.Decode(data, &dl, maxStoredSize); err != nil {
		// The source is the last token of the dead-letter subject.
		return DeadLetter{Seq: seq, Source: subject[strings.LastIndexByte(subject, '.')+1:],
			Reason: fmt.Sprintf("client: dead letter does not decode: %v", err), Category: "malformed",
			Time: stored, Data: data}
	}
	e := DeadLetter{Seq: seq, Source: dl.Source, Subject: dl.Subject, Reason: dl.Reason,
		Category: dl.Category, Time: stored, Headers: dl.Headers, Data: dl.Data}
	if dl.Time != 0 {
		e.Time = time.Unix(0, dl.Time)
	}
	return e
}

// DeleteDeadLetter removes the entry at seq from the dead-letter stream. It
// returns an error matching [ErrDeadLetterNotFound] when there is none. If
// ctx has no deadline, Config.Timeout applies.
func (c *Client) DeleteDeadLetter(ctx context.Context, seq uint64) error {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	st, err := c.js.Stream(ctx, layout.DLQStream(c.names))
	if err != nil {
		return fmt.Errorf("client: dead letters: %w", err)
	}
	return c.deleteDeadLetter(ctx, st, seq)
}

func (c *Client) deleteDeadLetter(ctx context.Context, st jetstream.Stream, seq uint64) error {
	if err := st.DeleteMsg(ctx, seq); err != nil {
		// The server says "no message found" in text only: look.
		if _, gerr := st.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%w: sequence %d", ErrDeadLetterNotFound, seq)
		}
		return fmt.Errorf("client: delete dead letter %d: %w", seq, err)
	}
	return nil
}

// Replay republishes the dead letter at seq to its original subject, with
// its original payload and headers, waits until the owning stream has
// stored it, and then deletes the entry. Use it after fixing what refused
// the message: a trigger refused because no worker had registered its
// workflow yet starts its run (with the same run id) once one has. A message
// that is still bad is dead-lettered again, under a new sequence.
//
// Headers: the original's JetStream control headers (every "Nats-" header:
// Nats-Msg-Id, Nats-Expected-*, Nats-TTL, Nats-Schedule-*, ...) and its
// Cano-Reply-To (the original caller's inbox, long gone) are dropped; the
// rest (Content-Type for a JSON trigger, say) are kept. Keeping the original
// Nats-Msg-Id would get a replay inside the duplicate window silently
// dropped as a duplicate of the refused original; duplicate runs are
// prevented by the run id in the message, not by the message id. Instead the
// replay carries the message id "dlq-replay:<seq>", so calling Replay again
// after a failure between the publish and the delete does not publish twice
// (within the duplicate window).
//
// It returns an error matching [ErrDeadLetterNotFound] for no entry at seq;
// an entry without an original subject (one that did not decode) is not
// replayed. If ctx has no deadline, Config.Timeout applies.
func (c *Client) Replay(ctx context.Context, seq uint64) error {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	st, err := c.js.Stream(ctx, layout.DLQStream(c.names))
	if err != nil {
		return fmt.Errorf("client: dead letters: %w", err)
	}
	raw, err := st.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%w: sequence %d", ErrDeadLetterNotFound, seq)
		}
		return fmt.Errorf("client: replay %d: %w", seq, err)
	}
	e := deadLetterEntry(seq, raw.Time, raw.Subject, raw.Data)
	if e.Subject == "" {
		return fmt.Errorf("client: replay %d: no original subject (%s)", seq, e.Reason)
	}
	msg := &nats.Msg{Subject: e.Subject, Data: e.Data, Header: nats.Header{}}
	for k, v := range e.Headers {
		if strings.HasPrefix(strings.ToLower(k), "nats-") || strings.EqualFold(k, protocol.HeaderReplyTo) {
			continue
		}
		msg.Header.Set(k, v)
	}
	msg.Header.Set(jetstream.MsgIDHeader, "dlq-replay:"+strconv.FormatUint(seq, 10))
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("client: replay %d to %s: %w", seq, e.Subject, err)
	}
	if err := c.deleteDeadLetter(ctx, st, seq); err != nil && !errors.Is(err, ErrDeadLetterNotFound) {
		// A concurrent Replay or Delete of the same entry is not an error.
		return err
	}
	return nil
}
