package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// SchemaVersion is the wire schema version this build writes and accepts.
const SchemaVersion = 1

// SchemaVersion2 marks a message in a form that builds before it would
// misread rather than refuse: a compact split spec ([SplitSpec.Compact], in
// a TaskResult, a SplitSpecRecord, or a Definition's large static split)
// or a task command whose input stayed in the run record
// ([TaskCommand.InputInRecord]). Those messages are
// written with V = 2 and only then; this build accepts 1 and 2 for their
// types, and an older build refuses 2 with [ErrSchemaVersion] and
// dead-letters the message instead of running a split with no branches or
// a task without its input.
const SchemaVersion2 = 2

// versioned is implemented by the message types that may carry
// [SchemaVersion2] forms.
type versioned interface{ maxSchemaVersion() uint16 }

// MaxPayloadDefault is the largest message a decoder accepts when no other
// maximum is configured: 1 MiB, the NATS server's default max_payload.
const MaxPayloadDefault = 1 << 20

// Message is implemented by every wire type.
type Message interface {
	// Validate checks required fields and value domains after decoding.
	Validate() error
	schemaVersion() uint16
}

var encPool = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
	// Sorted map keys make the encoding of a value deterministic (golden
	// files, de-duplication by content).
	e.enc.SetSortMapKeys(true)
	return e
}}

type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

// Encode returns the msgpack encoding of m. It is safe for concurrent use.
func Encode(m Message) ([]byte, error) {
	return AppendEncode(nil, m)
}

// AppendEncode appends the msgpack encoding of m to dst.
func AppendEncode(dst []byte, m Message) ([]byte, error) {
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

var decPool = sync.Pool{New: func() any {
	d := &decoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	return d
}}

type decoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// Decode decodes data into m and validates it. A payload over maxPayload
// bytes (0 means [MaxPayloadDefault]) gives [ErrTooLarge]; bytes that are not
// a valid encoding give [ErrMalformed]; an unknown schema version gives
// [ErrSchemaVersion]; missing or invalid fields give [ErrMissingField] or
// [ErrInvalidField]. Decode never panics on any input.
func Decode(data []byte, m Message, maxPayload int) (err error) {
	if maxPayload <= 0 {
		maxPayload = MaxPayloadDefault
	}
	if len(data) > maxPayload {
		return fmt.Errorf("%w: %d bytes, maximum %d", ErrTooLarge, len(data), maxPayload)
	}
	if len(data) == 0 {
		return fmt.Errorf("%w: empty", ErrMalformed)
	}
	if jsonObject(data) { // JSON forms (event_json.go, control_json.go)
		switch x := m.(type) {
		case *Event:
			return decodeEventJSON(data, x)
		case *TriggerReply:
			return decodeTriggerReplyJSON(data, x)
		}
	}
	if err := scanStructure(data); err != nil {
		return fmt.Errorf("%w: %T: %v", ErrMalformed, m, err)
	}
	defer func() {
		if r := recover(); r != nil {
			// Recovered so a bad message never crashes a process; the
			// fuzz targets fail on this text, as it means a decoder bug.
			err = fmt.Errorf("%w: %T: decoder panic: %v", ErrMalformed, m, r)
		}
	}()
	d := decPool.Get().(*decoder)
	d.r.Reset(data)
	err = d.dec.Decode(m)
	remaining := d.r.Len()
	d.r.Reset(nil)
	decPool.Put(d)
	if err != nil {
		return fmt.Errorf("%w: %T: %v", ErrMalformed, m, err)
	}
	if remaining != 0 {
		return fmt.Errorf("%w: %T: %d trailing bytes", ErrMalformed, m, remaining)
	}
	most := uint16(SchemaVersion)
	if vm, ok := m.(versioned); ok {
		most = vm.maxSchemaVersion()
	}
	if v := m.schemaVersion(); v < SchemaVersion || v > most {
		if most == SchemaVersion {
			return fmt.Errorf("%w: %d (this build knows %d)", ErrSchemaVersion, v, SchemaVersion)
		}
		return fmt.Errorf("%w: %d (this build knows %d to %d)", ErrSchemaVersion, v, SchemaVersion, most)
	}
	return m.Validate()
}

// ContentTypeJSON is the Content-Type header value that makes a trigger
// decode as JSON instead of msgpack.
const ContentTypeJSON = "application/json"

// HeaderContentType is the header naming a message's encoding.
const HeaderContentType = "Content-Type"

// jsonTrigger is the JSON form of a trigger accepted from the nats CLI:
// {"input": {...}, "initial_state": "...", "idempotency_key": "...", "run_id": "..."}.
type jsonTrigger struct {
	V              uint16          `json:"v"`
	Workflow       string          `json:"workflow"`
	InitialState   string          `json:"initial_state"`
	Input          json.RawMessage `json:"input"`
	IdempotencyKey string          `json:"idempotency_key"`
	RunID          string          `json:"run_id"`
}

// DecodeTriggerJSON decodes the JSON form of a trigger. workflow fills the
// workflow when the body names none (it comes from the subject). The input
// is kept as JSON with [InputJSON] as its format.
func DecodeTriggerJSON(data []byte, workflow string, maxPayload int) (*Trigger, error) {
	if maxPayload <= 0 {
		maxPayload = MaxPayloadDefault
	}
	if len(data) > maxPayload {
		return nil, fmt.Errorf("%w: %d bytes, maximum %d", ErrTooLarge, len(data), maxPayload)
	}
	var jt jsonTrigger
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&jt); err != nil {
			return nil, fmt.Errorf("%w: the body is not a trigger envelope (%v); %s", ErrMalformed, err, TriggerEnvelopeHint)
		}
	}
	if jt.V == 0 {
		jt.V = SchemaVersion
	}
	if jt.V != SchemaVersion {
		return nil, fmt.Errorf("%w: %d (this build knows %d)", ErrSchemaVersion, jt.V, SchemaVersion)
	}
	t := &Trigger{
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
		t.InputFormat = InputJSON
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}
