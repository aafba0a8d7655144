package coordinator

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// BenchmarkPublishEvent measures the coordinator's event publish path (encode
// and hand to the connection) against a real server: JSON into a pooled
// buffer, and, for comparison, the msgpack encoding it replaced.
func BenchmarkPublishEvent(b *testing.B) {
	srv := natstest.Start(b)
	nc, _ := srv.Connect(b)
	c := &Coordinator{nc: nc, names: protocol.MustNames("")}
	ev := &protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventState, RunID: "01HZXK3M9Q7T2V4W6Y8A0B1C2D",
		Workflow: "parallel_fetch", State: "fetch", Step: 3, Status: protocol.RunRunning, Time: 1767225600123456789}
	subject := c.names.EventSubject(ev.Workflow, ev.RunID, ev.Type)
	msgID := layout.EventMsgID(ev.RunID, ev.Step, string(ev.Type))
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.publishEvent(subject, ev, msgID)
		}
	})
	b.Run("msgpack_before", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, err := wirecodec.Encode(ev)
			if err != nil {
				b.Fatal(err)
			}
			msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, msgID)
			_ = c.nc.PublishMsg(msg)
		}
	})
}
