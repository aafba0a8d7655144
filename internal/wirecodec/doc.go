// Package wirecodec encodes and decodes pkg/protocol's messages and the
// user values they carry: the validating msgpack [Encode]/[Decode] pair
// (with its structure guard, codec_scan.go), the canonical value codec
// ([EncodeValue], [DecodeValue], [CheckValue]), and the JSON forms of
// triggers, cancel requests, trigger replies and events.
//
// The bytes are the wire contract, documented in pkg/protocol (message
// types, golden files) and here (the JSON event schema in event_json.go,
// the value encoding in codec_value.go); the Go functions are the engine's
// and are not part of the public surface.
package wirecodec
