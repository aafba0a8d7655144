package protocol_test

import (
	"testing"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// benchEvent is a typical transition event (the publish path's common case).
func benchEvent() *protocol.Event {
	return &protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventState, RunID: "01HZXK3M9Q7T2V4W6Y8A0B1C2D",
		Workflow: "parallel_fetch", State: "fetch", Step: 3, Status: protocol.RunRunning, Time: 1767225600123456789}
}

// BenchmarkEventEncodeMsgpack is the event encoding before events became
// JSON (kept for comparison).
func BenchmarkEventEncodeMsgpack(b *testing.B) {
	ev := benchEvent()
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		var err error
		buf, err = wirecodec.AppendEncode(buf[:0], ev)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEventEncodeJSON is the publish path's encoding: a hand-written
// append into a reused buffer.
func BenchmarkEventEncodeJSON(b *testing.B) {
	ev := benchEvent()
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = wirecodec.AppendEventJSON(buf[:0], ev)
	}
}
