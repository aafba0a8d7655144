package coordinator

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// contentTypeJSON is the Content-Type header value of events, shared
// (read-only) by every event message so a publish allocates no slice for it.
var contentTypeJSON = []string{protocol.ContentTypeJSON}

// publishEvent publishes ev as JSON (see protocol.AppendEventJSON),
// fire-and-forget, as a core NATS message (no PubAck); msgID, when set,
// lets the optional events capture stream drop a re-published duplicate.
func (c *Coordinator) publishEvent(subject string, ev *protocol.Event, msgID string) {
	bp := wirecodec.GetBuf() // reused once the publish has copied it
	data := wirecodec.AppendEventJSON((*bp)[:0], ev)
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header[protocol.HeaderContentType] = contentTypeJSON
	if msgID != "" {
		msg.Header[jetstream.MsgIDHeader] = []string{msgID}
	}
	_ = c.nc.PublishMsg(msg)
	wirecodec.PutBuf(bp, data)
}
