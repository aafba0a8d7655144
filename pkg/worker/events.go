package worker

import (
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// contentTypeJSON is the Content-Type header value of events, shared
// (read-only) by every event message so a publish allocates no slice for it.
var contentTypeJSON = []string{protocol.ContentTypeJSON}

// eventBufs holds the buffers events are encoded into: nats.Conn.PublishMsg
// copies the data into its write buffer, so a buffer is reused as soon as
// the publish returns.
var eventBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// publishEvent publishes ev as JSON (see protocol.AppendEventJSON),
// fire-and-forget, as a core NATS message (no PubAck).
func publishEvent(nc *nats.Conn, subject string, ev *protocol.Event) error {
	bp := eventBufs.Get().(*[]byte)
	data := wirecodec.AppendEventJSON((*bp)[:0], ev)
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header[protocol.HeaderContentType] = contentTypeJSON
	err := nc.PublishMsg(msg)
	if cap(data) <= 64<<10 {
		*bp = data
		eventBufs.Put(bp)
	}
	return err
}
