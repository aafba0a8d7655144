package wirecodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/cano-nats/cano/pkg/protocol"
)

// TriggerEnvelopeHint says what a JSON trigger looks like; errors about a
// trigger body that is not one end with it.
const TriggerEnvelopeHint = `publish {"input": <your input>} (optional fields: initial_state, idempotency_key, run_id, start_at or start_in) with the header Content-Type: application/json`

// jsonCancel is the JSON form of a cancel request accepted from the nats
// CLI: {"reason": "..."}; the run id comes from the subject.
type jsonCancel struct {
	V      uint16 `json:"v"`
	RunID  string `json:"run_id"`
	Reason string `json:"reason"`
}

// DecodeCancelJSON decodes the JSON form of a cancel request, published
// with Content-Type: application/json on [protocol.Names.CancelSubject]:
// {"reason": "..."}, or an empty body. runID is the run named by the
// subject; a run_id in the body must match it.
func DecodeCancelJSON(data []byte, runID string, maxPayload int) (*protocol.CancelRequest, error) {
	if maxPayload <= 0 {
		maxPayload = protocol.MaxPayloadDefault
	}
	if len(data) > maxPayload {
		return nil, fmt.Errorf("%w: %d bytes, maximum %d", protocol.ErrTooLarge, len(data), maxPayload)
	}
	var jc jsonCancel
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&jc); err != nil {
			return nil, fmt.Errorf(`%w: json cancel request: %v; publish {"reason": "<why>"} (or an empty body) with the header Content-Type: application/json`, protocol.ErrMalformed, err)
		}
	}
	if jc.V == 0 {
		jc.V = protocol.SchemaVersion
	}
	if jc.V != protocol.SchemaVersion {
		return nil, fmt.Errorf("%w: %d (this build knows %d)", protocol.ErrSchemaVersion, jc.V, protocol.SchemaVersion)
	}
	if jc.RunID != "" && jc.RunID != runID {
		return nil, fmt.Errorf("%w: cancel_request.run_id: %q in the body, %q in the subject", protocol.ErrInvalidField, jc.RunID, runID)
	}
	r := &protocol.CancelRequest{V: jc.V, RunID: runID, Reason: jc.Reason}
	if err := Validate(r); err != nil {
		return nil, err
	}
	return r, nil
}

// RunFromCancelSubject returns the run id of a subject built by
// [protocol.Names.CancelSubject], or "" if subject is not one.
func RunFromCancelSubject(n protocol.Names, subject string) string {
	prefix := n.CancelSubject("")
	if !strings.HasPrefix(subject, prefix) {
		return ""
	}
	return subject[len(prefix):]
}

// RunFromStartNowSubject returns the run id of a start-now subject
// (Names.StartNowSubject), or "" for another subject.
func RunFromStartNowSubject(n protocol.Names, subject string) string {
	prefix := n.StartNowSubject("")
	if !strings.HasPrefix(subject, prefix) {
		return ""
	}
	return subject[len(prefix):]
}

// AppendTriggerReplyJSON appends the JSON form of a trigger reply, sent to
// triggers that were JSON themselves:
// {"v":1,"run_id":"…","existing":true} or {"v":1,"error":{"category":…,"message":…}}
// ("retry":true after the error when the same request may be sent again).
func AppendTriggerReplyJSON(dst []byte, r *protocol.TriggerReply) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendUint(dst, uint64(r.V), 10)
	if r.RunID != "" {
		dst = append(dst, `,"run_id":`...)
		dst = appendJSONString(dst, r.RunID)
	}
	if r.Existing {
		dst = append(dst, `,"existing":true`...)
	}
	if r.Error != nil {
		dst = append(dst, `,"error":`...)
		dst = appendErrorJSON(dst, r.Error, 0)
	}
	if r.Retry {
		dst = append(dst, `,"retry":true`...)
	}
	return append(dst, '}')
}

// jsonTriggerReply is the decoding side of [AppendTriggerReplyJSON].
type jsonTriggerReply struct {
	V        uint16     `json:"v"`
	RunID    string     `json:"run_id"`
	Existing bool       `json:"existing"`
	Error    *jsonError `json:"error"`
	Retry    bool       `json:"retry"`
}

// decodeTriggerReplyJSON decodes the JSON form of a trigger reply; [Decode]
// calls it for a *TriggerReply whose data is a JSON object.
func decodeTriggerReplyJSON(data []byte, r *protocol.TriggerReply) error {
	var jr jsonTriggerReply
	if err := json.Unmarshal(data, &jr); err != nil {
		return fmt.Errorf("%w: json trigger reply: %v", protocol.ErrMalformed, err)
	}
	if jr.V != protocol.SchemaVersion {
		return fmt.Errorf("%w: %d (this build knows %d)", protocol.ErrSchemaVersion, jr.V, protocol.SchemaVersion)
	}
	*r = protocol.TriggerReply{V: jr.V, RunID: jr.RunID, Existing: jr.Existing, Error: jr.Error.info(0), Retry: jr.Retry}
	return Validate(r)
}
