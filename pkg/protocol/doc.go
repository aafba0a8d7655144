// Package protocol is Cano's wire contract: every message type (msgpack
// with explicit snake_case tags and a schema version), one validating
// [Encode]/[Decode] pair, and, in subjects.go, every subject, stream, bucket
// and key name built from a configurable prefix.
//
// # Who uses it
//
// It is public so that clients written in other languages can trigger,
// await and read runs against the same subjects and buckets: the structs,
// their tags and the golden files are the specification. Times on the wire
// are Unix nanoseconds (0 means not set) and durations nanoseconds. Go
// programs use package client instead, which returns its own types (Run,
// Event, WorkerInfo, ...) with time.Time, time.Duration and typed errors,
// and package fsm and worker to write and host workflows; they need not
// import protocol.
//
// Decoders never panic: bytes that are not a valid encoding give
// [ErrMalformed], a payload over the configured maximum [ErrTooLarge], an
// unknown schema version [ErrSchemaVersion], and missing or invalid fields
// [ErrMissingField], [ErrInvalidField] or [ErrInvalidName]. Triggers also
// decode from JSON ([DecodeTriggerJSON]) when published with
// Content-Type: application/json, so the stock nats CLI can start runs.
// Events are published as one line of JSON ([AppendEventJSON], schema in
// event_json.go) so `nats sub 'cano.event.>'` is readable; [Decode] into an
// *Event reads that form and the msgpack form of earlier builds.
//
// Golden files in testdata/golden pin the byte encoding of every type: a
// change of wire format must be deliberate (go test -update, then review).
// An additive change keeps the bytes from before it in testdata/compat and
// a test that they still decode (see the run history's fields).
//
// The run status lifecycle (RunRecord.Status) is drawn in package fsm.
package protocol
