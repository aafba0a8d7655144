package wirecodec

import (
	"math"

	"github.com/cano-nats/cano/pkg/protocol"
)

// Hand-written codecs of a trigger request and its reply (also the answer
// to a worker's result request): each run sends one trigger and gets two
// replies, so each of them was coded by reflection about six times per
// run across the client, the coordinator and the worker. The same rules
// as fast.go's hold: the reflective encoder's exact bytes, and decoding
// that gives up on anything unusual.

func appendTrigger(b []byte, m *protocol.Trigger) []byte {
	n := fieldCount(2, m.InitialState != "", m.DefVersion != "", len(m.Input) != 0, m.InputFormat != "",
		m.IdempotencyKey != "", m.RunID != "", m.Flow != "", m.Slot != 0, m.Epoch != 0, m.StartAt != 0)
	b = appendMapLen(b, n)
	b = appendUint(appendStr(b, "v"), uint64(m.V))
	b = appendStr(appendStr(b, "workflow"), m.Workflow)
	if m.InitialState != "" {
		b = appendStr(appendStr(b, "initial_state"), m.InitialState)
	}
	if m.DefVersion != "" {
		b = appendStr(appendStr(b, "def_version"), m.DefVersion)
	}
	if len(m.Input) != 0 {
		b = appendBin(appendStr(b, "input"), m.Input)
	}
	if m.InputFormat != "" {
		b = appendStr(appendStr(b, "input_format"), string(m.InputFormat))
	}
	if m.IdempotencyKey != "" {
		b = appendStr(appendStr(b, "idempotency_key"), m.IdempotencyKey)
	}
	if m.RunID != "" {
		b = appendStr(appendStr(b, "run_id"), m.RunID)
	}
	if m.Flow != "" {
		b = appendStr(appendStr(b, "flow"), m.Flow)
	}
	if m.Slot != 0 {
		b = appendInt(appendStr(b, "slot"), m.Slot)
	}
	if m.Epoch != 0 {
		b = appendUint(appendStr(b, "epoch"), m.Epoch)
	}
	if m.StartAt != 0 {
		b = appendInt(appendStr(b, "start_at"), m.StartAt)
	}
	return b
}

func readTrigger(r *reader, m *protocol.Trigger) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "v":
			m.V = uint16(r.uint(math.MaxUint16))
		case "workflow":
			m.Workflow = r.name()
		case "initial_state":
			m.InitialState = r.name()
		case "def_version":
			m.DefVersion = r.name()
		case "input":
			m.Input = r.bytes()
		case "input_format":
			m.InputFormat = protocol.InputFormat(r.name())
		case "idempotency_key":
			m.IdempotencyKey = r.str()
		case "run_id":
			m.RunID = r.str()
		case "flow":
			m.Flow = r.name()
		case "slot":
			m.Slot = r.int(math.MinInt64, math.MaxInt64)
		case "epoch":
			m.Epoch = r.uint(math.MaxUint64)
		case "start_at":
			m.StartAt = r.int(math.MinInt64, math.MaxInt64)
		default:
			r.fail()
		}
	}
}

func appendTriggerReply(b []byte, m *protocol.TriggerReply) []byte {
	b = appendMapLen(b, fieldCount(1, m.RunID != "", m.Error != nil, m.Existing, m.Retry))
	b = appendUint(appendStr(b, "v"), uint64(m.V))
	if m.RunID != "" {
		b = appendStr(appendStr(b, "run_id"), m.RunID)
	}
	if m.Error != nil {
		b = appendErrorInfo(appendStr(b, "error"), m.Error)
	}
	if m.Existing {
		b = appendBool(appendStr(b, "existing"), true)
	}
	if m.Retry {
		b = appendBool(appendStr(b, "retry"), true)
	}
	return b
}

func readTriggerReply(r *reader, m *protocol.TriggerReply) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "v":
			m.V = uint16(r.uint(math.MaxUint16))
		case "run_id":
			m.RunID = r.str()
		case "error":
			r.unset(m.Error != nil)
			m.Error = readErrorInfoPtr(r)
		case "existing":
			m.Existing = r.bool()
		case "retry":
			m.Retry = r.bool()
		default:
			r.fail()
		}
	}
}
