// Package pretty shows the engine's payloads to people: run inputs and
// outputs and dead-lettered messages, which are msgpack (or JSON, or
// anything at all, for a message refused as malformed), as JSON text.
// canoctl and the dashboard both use it, so a payload reads the same in
// a terminal and in a browser.
package pretty

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
)

// Value turns a value decoded from msgpack into one encoding/json can
// encode: maps with non-string keys get string keys, byte strings become
// strings. It changes maps and slices in place.
func Value(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = Value(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = Value(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = Value(e)
		}
		return x
	case []byte:
		return string(x)
	}
	return v
}

// largePayload is the size above which [Text] shows a payload's start
// without decoding it.
const largePayload = 64 << 10

// Decoded decodes a run's input or output for display; decode is
// client.Run's Input or Output. It returns a value encoding/json encodes,
// nil when the run has no such value, or "(cannot decode: …)".
func Decoded(decode func(any) error) any {
	var v any
	if err := decode(&v); err != nil {
		if errors.Is(err, client.ErrNoValue) {
			return nil
		}
		return "(cannot decode: " + err.Error() + ")"
	}
	return Value(v)
}

// JSON is v as compact JSON, without escaping <, > and & (see [Decoded]),
// or in Go syntax when it does not encode.
func JSON(v any) string {
	b, err := marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Payload decodes a message's payload for display. It returns the value
// and the form it was in:
//   - "json": b is JSON, returned as a json.RawMessage;
//   - "msgpack": b is one msgpack value, returned as its JSON
//     (json.RawMessage);
//   - "text": b is other UTF-8 text, returned as a string;
//   - "bytes": anything else, returned as b.
//
// An empty payload is (nil, "").
func Payload(b []byte) (v any, form string) {
	if len(b) == 0 {
		return nil, ""
	}
	if json.Valid(b) {
		return json.RawMessage(b), "json"
	}
	if m, ok := decodeOne(b); ok {
		if enc, err := marshal(Value(m)); err == nil {
			return json.RawMessage(enc), "msgpack"
		}
	}
	if utf8.Valid(b) {
		return string(b), "text"
	}
	return b, "bytes"
}

// Text is [Payload] as one string of at most max bytes (0: no bound),
// cut on a character and ended with "…" when cut: JSON for JSON and
// msgpack, the text itself for text, and hex ("hex: 84a1…") for bytes. A
// payload over 64 KiB is not decoded: its first max bytes are shown as
// text or hex, with its size.
func Text(b []byte, max int) string {
	if max > 0 && len(b) > largePayload {
		// Decoding a megabyte to show max bytes of it is not worth it
		// (a page lists many): its start, as text or hex.
		head := b[:min(len(b), max)]
		size := fmt.Sprintf(" (%d bytes)", len(b))
		if utf8.Valid(head) {
			return Cut(string(head), max) + "…" + size
		}
		return Cut("hex: "+hex.EncodeToString(head), max) + "…" + size
	}
	v, form := Payload(b)
	var s string
	switch form {
	case "":
		return ""
	case "json", "msgpack":
		s = string(v.(json.RawMessage))
	case "text":
		s = v.(string)
	default:
		s = "hex: " + hex.EncodeToString(b)
	}
	return Cut(s, max)
}

// Cut bounds s to at most max bytes (0: no bound), cutting on a
// character boundary and ending a cut string with "…".
func Cut(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// decodeOne decodes b when it is exactly one msgpack value: text such as
// "nope" would otherwise decode as its first byte (a small integer).
func decodeOne(b []byte) (any, bool) {
	var m any
	if err := wirecodec.DecodeValue(b, &m); err != nil {
		return nil, false
	}
	return m, true
}

// marshal encodes v as compact JSON without escaping <, > and &, which
// a person reads better (a page escapes them itself).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
