package wirecodec

import (
	"fmt"
	"math"

	"github.com/cano-nats/cano/pkg/protocol"
)

// Hand-written codecs of the messages on every task's path (a task command
// and its result), about ten times faster than msgpack's reflection, which
// was a fifth of a worker's CPU time. They write exactly the bytes the
// reflective encoder writes — a map of the set fields in declaration order
// (omitempty fields left out when zero), compact integers — which the
// golden files and TestFastCodecMatchesReflection check; a field added to
// one of these types must be added here too (until it is, the type is
// coded reflectively and that test fails: fast_guard.go).
//
// The decoders read what the encoders write (and the other forms the
// reflective decoder reads alike); on anything else — an unknown field, an
// unusual encoding, an integer out of range — they give up and Decode
// decodes reflectively, so the result is always the reflective decoder's.
// Like it, they set only the fields present in the data. A pointer (or
// history) field met when already set — a key repeated, or a message not
// fresh — is left to the reflective decoder, which decodes into what the
// pointer holds.

// appendFast appends m's encoding with a hand-written encoder; ok is false
// for a type without one.
func appendFast(dst []byte, m protocol.Message) (out []byte, ok bool, err error) {
	switch x := m.(type) {
	case *protocol.TaskCommand:
		if x != nil && fastTaskCommand { // fast_guard.go
			return appendTaskCommand(dst, x), true, nil
		}
	case *protocol.TaskResult:
		if x != nil && fastTaskResult {
			out, err = appendTaskResult(dst, x)
			return out, true, err
		}
	case *protocol.RunRecord:
		if x != nil && fastRunRecord {
			out, err = appendRunRecord(dst, x) // fast_record.go
			return out, true, err
		}
	case *protocol.Trigger:
		if x != nil && fastTrigger {
			return appendTrigger(dst, x), true, nil // fast_trigger.go
		}
	case *protocol.TriggerReply:
		if x != nil && fastTriggerReply {
			return appendTriggerReply(dst, x), true, nil
		}
	}
	return dst, false, nil
}

// sizeHint is about the size of m's encoding, for a type with a
// hand-written encoder (256 for the others).
func sizeHint(m protocol.Message) int {
	n := 256
	switch x := m.(type) {
	case *protocol.TaskCommand:
		if x != nil {
			n += len(x.Input) + len(x.Previous) + len(x.Task.Params)
			if x.Start != nil {
				n += 96 + len(x.Start.Input)
			}
		}
	case *protocol.TaskResult:
		if x != nil {
			n += len(x.Output)
			if x.Start != nil {
				n += 96 + len(x.Start.Input)
			}
		}
	case *protocol.RunRecord:
		if x != nil {
			n += len(x.Input) + len(x.Output) + 160*len(x.History)
		}
	case *protocol.Trigger:
		if x != nil {
			n += len(x.Input)
		}
	}
	return n
}

// decodeFast decodes data into m with a hand-written decoder; it reports
// false (m unchanged) when m's type has none or data is not in the form it
// reads.
func decodeFast(data []byte, m protocol.Message) bool {
	switch x := m.(type) {
	case *protocol.TaskCommand:
		return fastTaskCommand && readWhole(data, x, readTaskCommand) // fast_guard.go
	case *protocol.TaskResult:
		return fastTaskResult && readWhole(data, x, readTaskResult)
	case *protocol.RunRecord:
		return fastRunRecord && readWhole(data, x, readRunRecord)
	case *protocol.Trigger:
		return fastTrigger && readWhole(data, x, readTrigger) // fast_trigger.go
	case *protocol.TriggerReply:
		return fastTriggerReply && readWhole(data, x, readTriggerReply)
	}
	return false
}

// readWhole reads data into *x with read; when read gives up, *x is
// restored and readWhole reports false. Every read allocates what it sets
// (pointers, slices), never writing through the ones *x held.
func readWhole[T any](data []byte, x *T, read func(*reader, *T)) bool {
	if x == nil {
		return false
	}
	saved := *x
	r := reader{b: data}
	read(&r, x)
	if r.bad || r.i != len(data) {
		*x = saved
		return false
	}
	return true
}

func appendTaskCommand(b []byte, m *protocol.TaskCommand) []byte {
	n := fieldCount(7, m.Deadline != 0, len(m.Input) != 0, m.InputFormat != "", m.InputInRecord,
		len(m.Previous) != 0, m.PreviousInRecord, len(m.Path) != 0, m.JoinOf != 0, m.JoinBranches != 0,
		m.Start != nil)
	b = appendMapLen(b, n)
	b = appendUint(appendStr(b, "v"), uint64(m.V))
	b = appendStr(appendStr(b, "run_id"), m.RunID)
	b = appendStr(appendStr(b, "workflow"), m.Workflow)
	b = appendStr(appendStr(b, "state"), m.State)
	b = appendUint(appendStr(b, "step"), uint64(m.Step))
	b = appendInt(appendStr(b, "branch"), int64(m.Branch))
	b = appendTaskSpec(appendStr(b, "task"), &m.Task)
	if m.Deadline != 0 {
		b = appendInt(appendStr(b, "deadline"), m.Deadline)
	}
	if len(m.Input) != 0 {
		b = appendBin(appendStr(b, "input"), m.Input)
	}
	if m.InputFormat != "" {
		b = appendStr(appendStr(b, "input_format"), string(m.InputFormat))
	}
	if m.InputInRecord {
		b = appendBool(appendStr(b, "input_in_record"), true)
	}
	if len(m.Previous) != 0 {
		b = appendBin(appendStr(b, "previous"), m.Previous)
	}
	if m.PreviousInRecord {
		b = appendBool(appendStr(b, "previous_in_record"), true)
	}
	if len(m.Path) != 0 {
		b = appendStrs(appendStr(b, "path"), m.Path)
	}
	if m.JoinOf != 0 {
		b = appendUint(appendStr(b, "join_of"), uint64(m.JoinOf))
	}
	if m.JoinBranches != 0 {
		b = appendUint(appendStr(b, "join_branches"), uint64(m.JoinBranches))
	}
	if m.Start != nil {
		b = appendRunStart(appendStr(b, "start"), m.Start)
	}
	return b
}

func readTaskCommand(r *reader, m *protocol.TaskCommand) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "v":
			m.V = uint16(r.uint(math.MaxUint16))
		case "run_id":
			m.RunID = r.str()
		case "workflow":
			m.Workflow = r.name()
		case "state":
			m.State = r.name()
		case "step":
			m.Step = uint32(r.uint(math.MaxUint32))
		case "branch":
			m.Branch = int32(r.int(math.MinInt32, math.MaxInt32))
		case "task":
			readTaskSpec(r, &m.Task)
		case "deadline":
			m.Deadline = r.int(math.MinInt64, math.MaxInt64)
		case "input":
			m.Input = r.bytes()
		case "input_format":
			m.InputFormat = protocol.InputFormat(r.name())
		case "input_in_record":
			m.InputInRecord = r.bool()
		case "previous":
			m.Previous = r.bytes()
		case "previous_in_record":
			m.PreviousInRecord = r.bool()
		case "path":
			m.Path = r.strs(m.Path)
		case "join_of":
			m.JoinOf = uint32(r.uint(math.MaxUint32))
		case "join_branches":
			m.JoinBranches = uint32(r.uint(math.MaxUint32))
		case "start":
			r.unset(m.Start != nil)
			m.Start = readRunStartPtr(r)
		default:
			r.fail()
		}
	}
}

func appendTaskSpec(b []byte, t *protocol.TaskSpec) []byte {
	n := fieldCount(2, len(t.Params) != 0, t.AttemptTimeout != 0, t.Breaker != "", t.BreakerPolicy != nil)
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "kind"), t.Kind)
	if len(t.Params) != 0 {
		b = appendBin(appendStr(b, "params"), t.Params)
	}
	b = appendRetryPolicy(appendStr(b, "retry"), &t.Retry)
	if t.AttemptTimeout != 0 {
		b = appendInt(appendStr(b, "attempt_timeout"), t.AttemptTimeout)
	}
	if t.Breaker != "" {
		b = appendStr(appendStr(b, "breaker"), t.Breaker)
	}
	if p := t.BreakerPolicy; p != nil {
		b = appendMapLen(appendStr(b, "breaker_policy"), 3)
		b = appendUint(appendStr(b, "failure_threshold"), uint64(p.FailureThreshold))
		b = appendInt(appendStr(b, "reset_timeout"), p.ResetTimeout)
		b = appendUint(appendStr(b, "half_open_max_calls"), uint64(p.HalfOpenMaxCalls))
	}
	return b
}

func readTaskSpec(r *reader, t *protocol.TaskSpec) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "kind":
			t.Kind = r.name()
		case "params":
			t.Params = r.bytes()
		case "retry":
			readRetryPolicy(r, &t.Retry)
		case "attempt_timeout":
			t.AttemptTimeout = r.int(math.MinInt64, math.MaxInt64)
		case "breaker":
			t.Breaker = r.name()
		case "breaker_policy":
			r.unset(t.BreakerPolicy != nil)
			if r.nilValue() {
				t.BreakerPolicy = nil
				continue
			}
			p := new(protocol.BreakerPolicy)
			for n := r.mapLen(); n > 0 && !r.bad; n-- {
				switch string(r.key()) {
				case "failure_threshold":
					p.FailureThreshold = uint32(r.uint(math.MaxUint32))
				case "reset_timeout":
					p.ResetTimeout = r.int(math.MinInt64, math.MaxInt64)
				case "half_open_max_calls":
					p.HalfOpenMaxCalls = uint32(r.uint(math.MaxUint32))
				default:
					r.fail()
				}
			}
			t.BreakerPolicy = p
		default:
			r.fail()
		}
	}
}

func appendRetryPolicy(b []byte, p *protocol.RetryPolicy) []byte {
	n := fieldCount(1, p.MaxRetries != 0, p.BaseDelay != 0, p.Multiplier != 0, p.MaxDelay != 0, p.Jitter != 0)
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "mode"), string(p.Mode))
	if p.MaxRetries != 0 {
		b = appendUint(appendStr(b, "max_retries"), uint64(p.MaxRetries))
	}
	if p.BaseDelay != 0 {
		b = appendInt(appendStr(b, "base_delay"), p.BaseDelay)
	}
	if p.Multiplier != 0 {
		b = appendFloat64(appendStr(b, "multiplier"), p.Multiplier)
	}
	if p.MaxDelay != 0 {
		b = appendInt(appendStr(b, "max_delay"), p.MaxDelay)
	}
	if p.Jitter != 0 {
		b = appendFloat64(appendStr(b, "jitter"), p.Jitter)
	}
	return b
}

func readRetryPolicy(r *reader, p *protocol.RetryPolicy) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "mode":
			p.Mode = protocol.RetryMode(r.name())
		case "max_retries":
			p.MaxRetries = uint32(r.uint(math.MaxUint32))
		case "base_delay":
			p.BaseDelay = r.int(math.MinInt64, math.MaxInt64)
		case "multiplier":
			p.Multiplier = r.float64()
		case "max_delay":
			p.MaxDelay = r.int(math.MinInt64, math.MaxInt64)
		case "jitter":
			p.Jitter = r.float64()
		default:
			r.fail()
		}
	}
}

func appendTaskResult(b []byte, m *protocol.TaskResult) ([]byte, error) {
	n := fieldCount(5, m.Next != "", len(m.Output) != 0, m.Error != nil, m.Attempts != 0, m.Split != nil,
		m.Worker != "", m.StoreUsed, m.AttemptStarted != 0, m.AttemptDuration != 0, m.Start != nil)
	b = appendMapLen(b, n)
	b = appendUint(appendStr(b, "v"), uint64(m.V))
	b = appendStr(appendStr(b, "run_id"), m.RunID)
	b = appendUint(appendStr(b, "step"), uint64(m.Step))
	b = appendInt(appendStr(b, "branch"), int64(m.Branch))
	b = appendStr(appendStr(b, "status"), string(m.Status))
	if m.Next != "" {
		b = appendStr(appendStr(b, "next"), m.Next)
	}
	if len(m.Output) != 0 {
		b = appendBin(appendStr(b, "output"), m.Output)
	}
	if m.Error != nil {
		b = appendErrorInfo(appendStr(b, "error"), m.Error)
	}
	if m.Attempts != 0 {
		b = appendUint(appendStr(b, "attempts"), uint64(m.Attempts))
	}
	if m.Split != nil {
		var err error
		if b, err = appendReflect(appendStr(b, "split"), m.Split); err != nil {
			return b, err
		}
	}
	if m.Worker != "" {
		b = appendStr(appendStr(b, "worker"), m.Worker)
	}
	if m.StoreUsed {
		b = appendBool(appendStr(b, "store_used"), true)
	}
	if m.AttemptStarted != 0 {
		b = appendInt(appendStr(b, "attempt_started"), m.AttemptStarted)
	}
	if m.AttemptDuration != 0 {
		b = appendInt(appendStr(b, "attempt_duration"), m.AttemptDuration)
	}
	if m.Start != nil {
		b = appendRunStart(appendStr(b, "start"), m.Start)
	}
	return b, nil
}

func readTaskResult(r *reader, m *protocol.TaskResult) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "v":
			m.V = uint16(r.uint(math.MaxUint16))
		case "run_id":
			m.RunID = r.str()
		case "step":
			m.Step = uint32(r.uint(math.MaxUint32))
		case "branch":
			m.Branch = int32(r.int(math.MinInt32, math.MaxInt32))
		case "status":
			m.Status = protocol.ResultStatus(r.name())
		case "next":
			m.Next = r.name()
		case "output":
			m.Output = r.bytes()
		case "error":
			r.unset(m.Error != nil)
			m.Error = readErrorInfoPtr(r)
		case "attempts":
			m.Attempts = uint32(r.uint(math.MaxUint32))
		case "split":
			r.unset(m.Split != nil)
			// Rare (a dynamic split): decoded reflectively.
			var s *protocol.SplitSpec
			if raw := r.skip(); !r.bad {
				if err := decodeReflect(raw, &s); err != nil {
					r.fail()
				}
			}
			m.Split = s
		case "worker":
			m.Worker = r.name()
		case "store_used":
			m.StoreUsed = r.bool()
		case "attempt_started":
			m.AttemptStarted = r.int(math.MinInt64, math.MaxInt64)
		case "attempt_duration":
			m.AttemptDuration = r.int(math.MinInt64, math.MaxInt64)
		case "start":
			r.unset(m.Start != nil)
			m.Start = readRunStartPtr(r)
		default:
			r.fail()
		}
	}
}

func appendErrorInfo(b []byte, e *protocol.ErrorInfo) []byte {
	n := fieldCount(2, e.Attempts != 0, e.State != "", len(e.Path) != 0, e.Cause != nil)
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "category"), string(e.Category))
	b = appendStr(appendStr(b, "message"), e.Message)
	if e.Attempts != 0 {
		b = appendUint(appendStr(b, "attempts"), uint64(e.Attempts))
	}
	if e.State != "" {
		b = appendStr(appendStr(b, "state"), e.State)
	}
	if len(e.Path) != 0 {
		b = appendStrs(appendStr(b, "path"), e.Path)
	}
	if e.Cause != nil {
		b = appendErrorInfo(appendStr(b, "cause"), e.Cause)
	}
	return b
}

// readErrorInfoPtr reads a *ErrorInfo: nil, or a new value. The nesting of
// causes is bounded by scanStructure.
func readErrorInfoPtr(r *reader) *protocol.ErrorInfo {
	if r.nilValue() {
		return nil
	}
	e := new(protocol.ErrorInfo)
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "category":
			e.Category = protocol.ErrorCategory(r.name())
		case "message":
			e.Message = r.str()
		case "attempts":
			e.Attempts = uint32(r.uint(math.MaxUint32))
		case "state":
			e.State = r.name()
		case "path":
			e.Path = r.strs(e.Path)
		case "cause":
			r.unset(e.Cause != nil)
			e.Cause = readErrorInfoPtr(r)
		default:
			r.fail()
		}
	}
	return e
}

// appendRunStart appends a run's start facts (protocol.RunStart), field
// by field as the reflective encoder would.
func appendRunStart(b []byte, st *protocol.RunStart) []byte {
	n := fieldCount(2, // def_version, created_at
		st.Workflow != "", st.InitialState != "", len(st.Input) != 0, st.InputFormat != "",
		st.IdempotencyKey != "", st.Flow != "", st.Slot != 0)
	b = appendMapLen(b, n)
	if st.Workflow != "" {
		b = appendStr(appendStr(b, "workflow"), st.Workflow)
	}
	if st.InitialState != "" {
		b = appendStr(appendStr(b, "initial_state"), st.InitialState)
	}
	b = appendStr(appendStr(b, "def_version"), st.DefVersion)
	if len(st.Input) != 0 {
		b = appendBin(appendStr(b, "input"), st.Input)
	}
	if st.InputFormat != "" {
		b = appendStr(appendStr(b, "input_format"), string(st.InputFormat))
	}
	if st.IdempotencyKey != "" {
		b = appendStr(appendStr(b, "idempotency_key"), st.IdempotencyKey)
	}
	if st.Flow != "" {
		b = appendStr(appendStr(b, "flow"), st.Flow)
	}
	if st.Slot != 0 {
		b = appendInt(appendStr(b, "slot"), st.Slot)
	}
	return appendInt(appendStr(b, "created_at"), st.CreatedAt)
}

// readRunStartPtr reads a *RunStart: nil, or a new value.
func readRunStartPtr(r *reader) *protocol.RunStart {
	if r.nilValue() {
		return nil
	}
	st := new(protocol.RunStart)
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "workflow":
			st.Workflow = r.name()
		case "initial_state":
			st.InitialState = r.name()
		case "def_version":
			st.DefVersion = r.name()
		case "input":
			st.Input = r.bytes()
		case "input_format":
			st.InputFormat = protocol.InputFormat(r.name())
		case "idempotency_key":
			st.IdempotencyKey = r.str()
		case "flow":
			st.Flow = r.name()
		case "slot":
			st.Slot = r.int(math.MinInt64, math.MaxInt64)
		case "created_at":
			st.CreatedAt = r.int(math.MinInt64, math.MaxInt64)
		default:
			r.fail()
		}
	}
	return st
}

// appendReflect appends v's encoding by the reflective encoder (the rare
// parts of a hand-encoded message).
func appendReflect(dst []byte, v any) ([]byte, error) {
	e := encPool.Get().(*encoder)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		encPool.Put(e)
		return dst, err
	}
	dst = append(dst, e.buf.Bytes()...)
	if e.buf.Cap() <= 64<<10 {
		encPool.Put(e)
	}
	return dst, nil
}

// decodeReflect decodes data, one whole value, into v with the reflective
// decoder (the rare parts of a hand-decoded message).
func decodeReflect(data []byte, v any) error {
	d := decPool.Get().(*decoder)
	d.r.Reset(data)
	err := d.dec.Decode(v)
	if err == nil && d.r.Len() != 0 {
		err = fmt.Errorf("%d trailing bytes", d.r.Len())
	}
	d.r.Reset(nil)
	decPool.Put(d)
	return err
}
