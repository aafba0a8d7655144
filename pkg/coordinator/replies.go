package coordinator

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// isJSON reports whether msg's body is read as JSON: its header says so,
// or it is empty (no input: what `nats pub SUBJECT ""` sends; no msgpack
// message is empty).
func isJSON(msg jetstream.Msg) bool {
	return msg.Headers().Get(protocol.HeaderContentType) == protocol.ContentTypeJSON ||
		len(bytes.TrimSpace(msg.Data())) == 0
}

// answerJSON reports whether a trigger with this Content-Type and body is
// answered in JSON: unless it is msgpack (no header, a msgpack map), so
// that a person who sent JSON, an empty body or something unreadable
// reads the answer (the nats CLI prints it).
func answerJSON(contentType string, data []byte) bool {
	return contentType == protocol.ContentTypeJSON || contentType == "" && !wirecodec.MsgpackMap(data)
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
	if answerJSON(j.msg.Headers().Get(protocol.HeaderContentType), j.msg.Data()) {
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
	if err := jsonHint(msg, cancelHint, wirecodec.Decode(msg.Data(), r, c.cfg.MaxPayload)); err != nil {
		return nil, err
	}
	return r, nil
}

// jsonHint adds what to do to a msgpack decode error of a body that is
// not msgpack: JSON without the Content-Type header, or neither. hint says
// what to publish instead.
func jsonHint(msg jetstream.Msg, hint string, err error) error {
	if err == nil || !errors.Is(err, protocol.ErrMalformed) {
		return err
	}
	if b := bytes.TrimSpace(msg.Data()); len(b) > 0 && (b[0] == '{' || b[0] == '[' || b[0] == '"') {
		// The advice first: the decoder's own words name its internals.
		return fmt.Errorf("the body looks like JSON but has no Content-Type header: add the header Content-Type: application/json (read as msgpack instead, it failed: %w)", err)
	}
	if !wirecodec.MsgpackMap(msg.Data()) {
		return fmt.Errorf("the body is neither JSON (no Content-Type: application/json header) nor a msgpack message: %s (read as msgpack, it failed: %w)", hint, err)
	}
	return err
}

// cancelHint says what to publish to cancel a run.
const cancelHint = `publish {"reason": "<why>"}, or an empty body, with the header Content-Type: application/json`
