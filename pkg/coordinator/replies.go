package coordinator

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// isJSON reports whether msg says its body is JSON.
func isJSON(msg jetstream.Msg) bool {
	return msg.Headers().Get(protocol.HeaderContentType) == protocol.ContentTypeJSON
}

// sendReply answers a trigger that asked for a reply: in JSON when the
// trigger was JSON (so the nats CLI prints it), else msgpack.
func (c *Coordinator) sendReply(j job, r *protocol.TriggerReply) {
	if rm, ok := j.msg.(*requestMsg); ok {
		if !rm.result { // a result request is answered when settled
			c.replyRequest(rm, r) // requests.go
		}
		return
	}
	if j.replyTo == "" {
		return
	}
	if isJSON(j.msg) {
		_ = c.nc.Publish(j.replyTo, wirecodec.AppendTriggerReplyJSON(nil, r))
		return
	}
	if data, err := wirecodec.Encode(r); err == nil {
		_ = c.nc.Publish(j.replyTo, data)
	}
}

// decodeCancel decodes a cancel request: JSON with the Content-Type header
// (the run id from the subject), else msgpack.
func (c *Coordinator) decodeCancel(msg jetstream.Msg) (*protocol.CancelRequest, error) {
	if isJSON(msg) {
		return wirecodec.DecodeCancelJSON(msg.Data(), wirecodec.RunFromCancelSubject(c.names, msg.Subject()), c.cfg.MaxPayload)
	}
	r := new(protocol.CancelRequest)
	if err := jsonHint(msg, wirecodec.Decode(msg.Data(), r, c.cfg.MaxPayload)); err != nil {
		return nil, err
	}
	return r, nil
}

// jsonHint adds what to do to a msgpack decode error of a body that is
// JSON but came without the Content-Type header.
func jsonHint(msg jetstream.Msg, err error) error {
	if err == nil || !errors.Is(err, protocol.ErrMalformed) {
		return err
	}
	if b := bytes.TrimSpace(msg.Data()); len(b) > 0 && (b[0] == '{' || b[0] == '[' || b[0] == '"') {
		// The advice first: the decoder's own words name its internals.
		return fmt.Errorf("the body looks like JSON but has no Content-Type header: add the header Content-Type: application/json (read as msgpack instead, it failed: %w)", err)
	}
	return err
}
