package wirecodec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cano-nats/cano/pkg/protocol"
)

// Events are JSON on the wire, one object on one line, so that
// `nats sub 'cano.event.>'` is readable. The schema (every field snake_case,
// optional ones left out when empty):
//
//	{
//	  "v": 1,                          schema version
//	  "type": "failed",                EventType, also the subject's last token
//	  "run_id": "01HZX…",
//	  "workflow": "order",
//	  "state": "charge",               state entered / where the run ended
//	  "step": 3,                       transition counter
//	  "status": "failed",              RunStatus
//	  "time": "2026-01-01T00:00:00.123456789Z",   RFC 3339, UTC
//	  "error": {"category": "retry_exhausted", "message": "…",
//	            "attempts": 3, "state": "charge", "path": ["start", "charge"],
//	            "cause": {…}},          ErrorInfo, nested causes
//	  "path": ["start", "charge"],     states visited (terminal events)
//	  "output": {"total": 42},         run output as JSON (completed events)
//	  "output_msgpack": "gqN0…",       instead of output when the value has no
//	                                   exact JSON form (binary, non-string keys):
//	                                   base64 of the msgpack value
//	  "detail": "join all: 1 of 3 branches failed"
//	}
//
// [AppendEventJSON] writes it without reflection. [Decode] into an *Event
// reads it and, for a rolling upgrade, also the msgpack form that builds
// before this one published (a msgpack map never starts with '{').

// AppendEventJSON appends the JSON form of ev (see the schema above) to dst,
// with no trailing newline. It allocates nothing for events without output.
func AppendEventJSON(dst []byte, ev *protocol.Event) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendUint(dst, uint64(ev.V), 10)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, string(ev.Type))
	dst = append(dst, `,"run_id":`...)
	dst = appendJSONString(dst, ev.RunID)
	dst = append(dst, `,"workflow":`...)
	dst = appendJSONString(dst, ev.Workflow)
	if ev.State != "" {
		dst = append(dst, `,"state":`...)
		dst = appendJSONString(dst, ev.State)
	}
	if ev.Step != 0 {
		dst = append(dst, `,"step":`...)
		dst = strconv.AppendUint(dst, uint64(ev.Step), 10)
	}
	if ev.Status != "" {
		dst = append(dst, `,"status":`...)
		dst = appendJSONString(dst, string(ev.Status))
	}
	if ev.Time != 0 {
		dst = append(dst, `,"time":"`...)
		dst = time.Unix(0, ev.Time).UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if ev.Error != nil {
		dst = append(dst, `,"error":`...)
		dst = appendErrorJSON(dst, ev.Error, 0)
	}
	if len(ev.Path) > 0 {
		dst = append(dst, `,"path":`...)
		dst = appendJSONStrings(dst, ev.Path)
	}
	if len(ev.Output) > 0 {
		if js, ok := valueAsJSON(ev.Output); ok {
			dst = append(dst, `,"output":`...)
			dst = append(dst, js...)
		} else {
			dst = append(dst, `,"output_msgpack":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, ev.Output)
			dst = append(dst, '"')
		}
	}
	if ev.Detail != "" {
		dst = append(dst, `,"detail":`...)
		dst = appendJSONString(dst, ev.Detail)
	}
	return append(dst, '}')
}

// maxCauseDepth bounds the error chain written and read.
const maxCauseDepth = 16

func appendErrorJSON(dst []byte, e *protocol.ErrorInfo, depth int) []byte {
	dst = append(dst, `{"category":`...)
	dst = appendJSONString(dst, string(e.Category))
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, e.Message)
	if e.Attempts != 0 {
		dst = append(dst, `,"attempts":`...)
		dst = strconv.AppendUint(dst, uint64(e.Attempts), 10)
	}
	if e.State != "" {
		dst = append(dst, `,"state":`...)
		dst = appendJSONString(dst, e.State)
	}
	if len(e.Path) > 0 {
		dst = append(dst, `,"path":`...)
		dst = appendJSONStrings(dst, e.Path)
	}
	if e.Cause != nil && depth < maxCauseDepth {
		dst = append(dst, `,"cause":`...)
		dst = appendErrorJSON(dst, e.Cause, depth+1)
	}
	return append(dst, '}')
}

func appendJSONStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// valueAsJSON renders a msgpack value (see [EncodeValue]) as JSON when that
// form converts back to exactly the same bytes, so a reader loses nothing.
func valueAsJSON(data []byte) ([]byte, bool) {
	var v any
	if DecodeValue(data, &v) != nil {
		return nil, false
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	back, err := jsonToValue(js)
	if err != nil || !bytes.Equal(back, data) {
		return nil, false
	}
	return js, true
}

// jsonToValue converts a JSON value to its canonical msgpack encoding:
// integral numbers become integers, others float64.
func jsonToValue(js []byte) ([]byte, error) {
	v, err := parseJSON(js, false)
	if err != nil {
		return nil, err
	}
	return EncodeValue(v)
}

// jsonEvent is the decoding side of the JSON event schema.
type jsonEvent struct {
	V             uint16             `json:"v"`
	Type          protocol.EventType `json:"type"`
	RunID         string             `json:"run_id"`
	Workflow      string             `json:"workflow"`
	State         string             `json:"state"`
	Step          uint32             `json:"step"`
	Status        protocol.RunStatus `json:"status"`
	Time          string             `json:"time"`
	Error         *jsonError         `json:"error"`
	Path          []string           `json:"path"`
	Output        json.RawMessage    `json:"output"`
	OutputMsgpack []byte             `json:"output_msgpack"`
	Detail        string             `json:"detail"`
}

type jsonError struct {
	Category protocol.ErrorCategory `json:"category"`
	Message  string                 `json:"message"`
	Attempts uint32                 `json:"attempts"`
	State    string                 `json:"state"`
	Path     []string               `json:"path"`
	Cause    *jsonError             `json:"cause"`
}

func (e *jsonError) info(depth int) *protocol.ErrorInfo {
	if e == nil || depth > maxCauseDepth {
		return nil
	}
	return &protocol.ErrorInfo{Category: e.Category, Message: e.Message, Attempts: e.Attempts,
		State: e.State, Path: e.Path, Cause: e.Cause.info(depth + 1)}
}

// JSONObject reports whether data starts (after white space) as a JSON
// object; a msgpack map never does.
func JSONObject(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// MsgpackMap reports whether data starts as a msgpack map, as every
// message of the wire does: a body that does not is no msgpack message,
// whatever it is.
func MsgpackMap(data []byte) bool {
	return len(data) > 0 && (data[0]&0xf0 == 0x80 || data[0] == 0xde || data[0] == 0xdf)
}

// decodeEventJSON decodes the JSON form of an event; [Decode] calls it for
// an *Event whose data is a JSON object, after the size check.
func decodeEventJSON(data []byte, ev *protocol.Event) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	var je jsonEvent
	if err := json.Unmarshal(trimmed, &je); err != nil {
		return fmt.Errorf("%w: json event: %v", protocol.ErrMalformed, err)
	}
	if je.V != protocol.SchemaVersion {
		return fmt.Errorf("%w: %d (this build knows %d)", protocol.ErrSchemaVersion, je.V, protocol.SchemaVersion)
	}
	*ev = protocol.Event{V: je.V, Type: je.Type, RunID: je.RunID, Workflow: je.Workflow, State: je.State,
		Step: je.Step, Status: je.Status, Error: je.Error.info(0), Path: je.Path, Detail: je.Detail}
	if je.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, je.Time)
		if err != nil {
			return fmt.Errorf("%w: event: time %q is not RFC 3339", protocol.ErrInvalidField, je.Time)
		}
		ev.Time = t.UnixNano()
	}
	switch {
	case len(je.Output) > 0: // "null" too: a task's NextWith(exit, nilSlice) is msgpack nil, not no output
		out, err := jsonToValue(je.Output)
		if err != nil {
			return fmt.Errorf("%w: event: output: %v", protocol.ErrInvalidField, err)
		}
		ev.Output = out
	case len(je.OutputMsgpack) > 0:
		if err := CheckValue(je.OutputMsgpack); err != nil {
			return fmt.Errorf("%w: event: output_msgpack: %v", protocol.ErrInvalidField, err)
		}
		ev.Output = je.OutputMsgpack
	}
	return Validate(ev)
}
