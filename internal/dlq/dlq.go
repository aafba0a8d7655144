// Package dlq copies refused messages to the dead-letter stream with their
// reason. Coordinator and worker share it.
package dlq

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Letter builds the dead-letter message for msg refused because of reason.
// The category is the protocol or cano category the reason matches.
func Letter(names protocol.Names, source string, msg jetstream.Msg, reason error, now time.Time) *nats.Msg {
	dl := &protocol.DeadLetter{V: protocol.SchemaVersion, Source: source, Subject: msg.Subject(),
		Reason: reason.Error(), Category: Category(reason), Data: msg.Data(), Time: now.UnixNano()}
	if h := msg.Headers(); len(h) > 0 {
		dl.Headers = make(map[string]string, len(h))
		for k := range h {
			dl.Headers[k] = h.Get(k)
		}
	}
	data, err := wirecodec.Encode(dl)
	if err != nil { // only if the original is absurdly large: keep the reason
		dl.Data = nil
		data, _ = wirecodec.Encode(dl)
	}
	out := &nats.Msg{Subject: names.DLQSubject(source), Data: data, Header: nats.Header{}}
	// The reason is also readable text in headers, for `nats sub 'cano.dlq.>'`.
	out.Header.Set(HeaderSource, source)
	out.Header.Set(HeaderCategory, dl.Category)
	out.Header.Set(HeaderSubject, msg.Subject())
	out.Header.Set(HeaderReason, headerText(dl.Reason, 1024))
	if md, err := msg.Metadata(); err == nil {
		// A letter re-published after its input was redelivered (its first
		// publish timed out but landed) is de-duplicated.
		out.Header.Set(jetstream.MsgIDHeader, "dlq:"+md.Stream+":"+strconv.FormatUint(md.Sequence.Stream, 10))
	}
	return out
}

// Headers of a dead letter, in readable text.
const (
	HeaderSource   = "Cano-Source"   // coordinator input or worker source: trigger, result, control, timer, task
	HeaderCategory = "Cano-Category" // see Category
	HeaderSubject  = "Cano-Subject"  // the refused message's subject
	HeaderReason   = "Cano-Reason"   // the reason, one line, at most 1 KiB
)

// headerText makes s one line of at most n bytes (header values cannot
// hold line breaks).
func headerText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// Category names the error class of reason for the dead-letter entry.
func Category(reason error) string {
	for _, c := range []struct {
		err  error
		name string
	}{
		{protocol.ErrTooLarge, "too_large"},
		{protocol.ErrSchemaVersion, "schema_version"},
		{protocol.ErrMalformed, "malformed"},
		{protocol.ErrMissingField, "missing_field"},
		{protocol.ErrInvalidField, "invalid_field"},
		{protocol.ErrInvalidName, "invalid_name"},
	} {
		if errors.Is(reason, c.err) {
			return c.name
		}
	}
	var cat interface{ Is(error) bool }
	if errors.As(reason, &cat) {
		return "rejected"
	}
	return "rejected"
}
