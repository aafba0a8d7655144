// Package protocol is Cano's wire contract: every message type (msgpack
// with explicit snake_case tags and a schema version), their enum
// constants and errors, and, in subjects.go, every subject built from a
// configurable prefix.
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
// The engine's codec (internal/wirecodec, not public: its bytes are the
// contract, its Go functions are not) never panics: bytes that are not a
// valid encoding give [ErrMalformed], a payload over the configured maximum
// [ErrTooLarge], an unknown schema version [ErrSchemaVersion], and missing
// or invalid fields [ErrMissingField], [ErrInvalidField] or
// [ErrInvalidName]. User values inside messages (task parameters, inputs,
// outputs, store values) are canonical msgpack: integers in their smallest
// form, map and struct entries sorted by key. Triggers and cancel requests
// also decode from JSON when published with Content-Type: application/json
// ({"input": ..., "initial_state": ..., "idempotency_key": ..., "run_id":
// ...}; {"reason": ...}), so the stock nats CLI can start and cancel runs.
// Events are published as one line of JSON (schema in
// internal/wirecodec/event_json.go) so `nats sub 'cano.event.>'` is
// readable.
//
// Golden files in testdata/golden pin the byte encoding of every type: a
// change of wire format must be deliberate (go test -update, then review).
// An additive change keeps the bytes from before it in testdata/compat and
// a test that they still decode (see the run history's fields).
//
// The run status lifecycle (RunRecord.Status) is drawn in package fsm.
package protocol
