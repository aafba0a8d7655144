package wirecodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cano-nats/cano/internal/wirecodec/hooks"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/vmihailenco/msgpack/v5"
)

// encPool holds the encoders of protocol messages; valueEncPool those of
// user values (codec_value.go), which also read json tags.
var encPool, valueEncPool = sync.Pool{New: func() any { return newEncoder("") }},
	sync.Pool{New: func() any { return newEncoder(valueFallbackTag) }}

// newEncoder returns an encoder whose struct fields are named by their
// msgpack tag, else by their fallbackTag (none when ""), else by the field
// name.
func newEncoder(fallbackTag string) *encoder {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
	// Sorted map keys make the encoding of a value deterministic (golden
	// files, de-duplication by content).
	e.enc.SetSortMapKeys(true)
	if fallbackTag != "" {
		e.enc.SetCustomStructTag(fallbackTag)
	}
	return e
}

type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// Encode returns the msgpack encoding of m. It is safe for concurrent use.
func Encode(m protocol.Message) ([]byte, error) {
	return AppendEncode(nil, m)
}

// AppendEncode appends the msgpack encoding of m to dst.
func AppendEncode(dst []byte, m protocol.Message) ([]byte, error) {
	if cap(dst)-len(dst) < 256 {
		// One allocation for the whole message, mostly (fast.go appends).
		dst = append(make([]byte, 0, len(dst)+sizeHint(m)), dst...)
	}
	if out, ok, err := appendFast(dst, m); ok { // fast.go
		if err != nil {
			return dst, fmt.Errorf("protocol: encode %T: %w", m, err)
		}
		return out, nil
	}
	e := encPool.Get().(*encoder)
	e.buf.Reset()
	if err := e.enc.Encode(m); err != nil {
		encPool.Put(e)
		return dst, fmt.Errorf("protocol: encode %T: %w", m, err)
	}
	dst = append(dst, e.buf.Bytes()...)
	if e.buf.Cap() <= 64<<10 {
		encPool.Put(e)
	}
	return dst, nil
}

// decPool holds the decoders of protocol messages; valueDecPool those of
// user values (codec_value.go), which also read json tags.
var decPool, valueDecPool = sync.Pool{New: func() any { return newDecoder("") }},
	sync.Pool{New: func() any { return newDecoder(valueFallbackTag) }}

// newDecoder returns a decoder naming struct fields as newEncoder does.
func newDecoder(fallbackTag string) *decoder {
	d := &decoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	if fallbackTag != "" {
		d.dec.SetCustomStructTag(fallbackTag)
	}
	return d
}

type decoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// Decode decodes data into m and validates it. A payload over maxPayload
// bytes (0 means [protocol.MaxPayloadDefault]) gives [protocol.ErrTooLarge]; bytes that are not
// a valid encoding give [protocol.ErrMalformed]; an unknown schema version gives
// [protocol.ErrSchemaVersion]; missing or invalid fields give [protocol.ErrMissingField] or
// [protocol.ErrInvalidField]. Decode never panics on any input.
func Decode(data []byte, m protocol.Message, maxPayload int) (err error) {
	if maxPayload <= 0 {
		maxPayload = protocol.MaxPayloadDefault
	}
	if len(data) > maxPayload {
		return fmt.Errorf("%w: %d bytes, maximum %d", protocol.ErrTooLarge, len(data), maxPayload)
	}
	if len(data) == 0 {
		return fmt.Errorf("%w: empty", protocol.ErrMalformed)
	}
	if JSONObject(data) { // JSON forms (event_json.go, control_json.go)
		switch x := m.(type) {
		case *protocol.Event:
			return decodeEventJSON(data, x)
		case *protocol.TriggerReply:
			return decodeTriggerReplyJSON(data, x)
		}
	}
	if err := scanStructure(data); err != nil {
		return fmt.Errorf("%w: %T: %v", protocol.ErrMalformed, m, err)
	}
	defer func() {
		if r := recover(); r != nil {
			// Recovered so a bad message never crashes a process; the
			// fuzz targets fail on this text, as it means a decoder bug.
			err = fmt.Errorf("%w: %T: decoder panic: %v", protocol.ErrMalformed, m, r)
		}
	}()
	if decodeFast(data, m) { // fast.go
		if err := hooks.CheckSchemaVersion(m); err != nil {
			return err
		}
		return Validate(m)
	}
	d := decPool.Get().(*decoder)
	d.r.Reset(data)
	err = d.dec.Decode(m)
	remaining := d.r.Len()
	d.r.Reset(nil)
	decPool.Put(d)
	if err != nil {
		return fmt.Errorf("%w: %T: %v", protocol.ErrMalformed, m, err)
	}
	if remaining != 0 {
		return fmt.Errorf("%w: %T: %d trailing bytes", protocol.ErrMalformed, m, remaining)
	}
	if err := hooks.CheckSchemaVersion(m); err != nil {
		return err
	}
	return Validate(m)
}

// Validate checks m's required fields and value domains, as [Decode] does
// after decoding; the engine also runs it before publishing what it built.
func Validate(m protocol.Message) error { return hooks.Validate(m) }

// jsonTrigger is the JSON form of a trigger accepted from the nats CLI:
// {"input": {...}, "initial_state": "...", "idempotency_key": "...", "run_id": "..."}.
type jsonTrigger struct {
	V              uint16          `json:"v"`
	Workflow       string          `json:"workflow"`
	InitialState   string          `json:"initial_state"`
	Input          json.RawMessage `json:"input"`
	IdempotencyKey string          `json:"idempotency_key"`
	RunID          string          `json:"run_id"`
	// StartAt (RFC 3339) or StartIn (a Go duration, "90s", "2h30m",
	// counted from now) delay the run's start.
	StartAt string `json:"start_at"`
	StartIn string `json:"start_in"`
}

// DecodeTriggerJSON decodes the JSON form of a trigger. workflow fills the
// workflow when the body names none (it comes from the subject). The input
// is kept as JSON with [protocol.InputJSON] as its format. now is the time a
// start_in counts from.
func DecodeTriggerJSON(data []byte, workflow string, maxPayload int, now time.Time) (*protocol.Trigger, error) {
	if maxPayload <= 0 {
		maxPayload = protocol.MaxPayloadDefault
	}
	if len(data) > maxPayload {
		return nil, fmt.Errorf("%w: %d bytes, maximum %d", protocol.ErrTooLarge, len(data), maxPayload)
	}
	var jt jsonTrigger
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&jt); err != nil {
			return nil, fmt.Errorf("%w: the body is not a trigger envelope (%v); %s", protocol.ErrMalformed, err, TriggerEnvelopeHint)
		}
	}
	if jt.V == 0 {
		jt.V = protocol.SchemaVersion
	}
	if jt.V != protocol.SchemaVersion {
		return nil, fmt.Errorf("%w: %d (this build knows %d)", protocol.ErrSchemaVersion, jt.V, protocol.SchemaVersion)
	}
	t := &protocol.Trigger{
		V:              jt.V,
		Workflow:       jt.Workflow,
		InitialState:   jt.InitialState,
		IdempotencyKey: jt.IdempotencyKey,
		RunID:          jt.RunID,
	}
	if t.Workflow == "" {
		t.Workflow = workflow
	}
	if len(jt.Input) > 0 && string(jt.Input) != "null" {
		t.Input = []byte(jt.Input)
		t.InputFormat = protocol.InputJSON
	}
	start, err := jsonStart(jt.StartAt, jt.StartIn, now)
	if err != nil {
		return nil, err
	}
	if start > 0 {
		t.V, t.StartAt = protocol.SchemaVersion4, start
	}
	if err := Validate(t); err != nil {
		return nil, err
	}
	return t, nil
}

// jsonStart is the start time (unix ns) a JSON trigger's start_at or
// start_in asks for; 0 for none.
func jsonStart(at, in string, now time.Time) (int64, error) {
	switch {
	case at != "" && in != "":
		return 0, fmt.Errorf("%w: start_at and start_in: set one of them", protocol.ErrInvalidField)
	case at != "":
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return 0, fmt.Errorf("%w: start_at %q: want an RFC 3339 time such as \"2026-12-24T18:00:00Z\"", protocol.ErrInvalidField, at)
		}
		ns, err := StartTime(t)
		if err != nil {
			return 0, fmt.Errorf("%w: start_at %w", protocol.ErrInvalidField, err)
		}
		return ns, nil
	case in != "":
		d, err := time.ParseDuration(in)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%w: start_in %q: want a duration such as \"90s\" or \"2h30m\" (hours at most: no \"d\")", protocol.ErrInvalidField, in)
		}
		ns, err := StartTime(now.Add(d))
		if err != nil {
			return 0, fmt.Errorf("%w: start_in %q: %s", protocol.ErrInvalidField, in, startTimeRange)
		}
		return ns, nil
	}
	return 0, nil
}

// startTimeRange says which start times a run can have.
const startTimeRange = "a start time must be between 1970 and 2262 (the times Cano stores)"

// StartTime is t in unix nanoseconds, the form a trigger's start time is
// stored in, or an error saying t is outside what that form holds (before
// 1970, or after 2262-04-11).
func StartTime(t time.Time) (int64, error) {
	if t.Before(time.Unix(0, 1)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0, fmt.Errorf("%s: %s", t.UTC().Format(time.RFC3339), startTimeRange)
	}
	return t.UnixNano(), nil
}
