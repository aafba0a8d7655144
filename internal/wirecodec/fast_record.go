package wirecodec

import (
	"math"

	"github.com/cano-nats/cano/pkg/protocol"
)

// The hand-written codec of the run record, written on every transition
// (see fast.go for the rules these follow). The active split's progress is
// left to reflection (rare, and bounded by the split's size anyway).

func appendRunRecord(b []byte, m *protocol.RunRecord) ([]byte, error) {
	n := fieldCount(11, len(m.Input) != 0, m.InputFormat != "", len(m.Output) != 0, m.Error != nil,
		m.Deadline != 0, m.StartAt != 0, m.CancelRequested, m.IdempotencyKey != "", m.Flow != "", m.Slot != 0, m.Split != nil,
		m.JoinOf != 0, m.JoinBranches != 0, m.StoreUsed, len(m.History) != 0)
	b = appendMapLen(b, n)
	b = appendUint(appendStr(b, "v"), uint64(m.V))
	b = appendStr(appendStr(b, "id"), m.ID)
	b = appendStr(appendStr(b, "workflow"), m.Workflow)
	b = appendStr(appendStr(b, "def_version"), m.DefVersion)
	b = appendStr(appendStr(b, "status"), string(m.Status))
	b = appendStr(appendStr(b, "state"), m.State)
	b = appendUint(appendStr(b, "step"), uint64(m.Step))
	b = appendStrs(appendStr(b, "path"), m.Path)
	if len(m.Input) != 0 {
		b = appendBin(appendStr(b, "input"), m.Input)
	}
	if m.InputFormat != "" {
		b = appendStr(appendStr(b, "input_format"), string(m.InputFormat))
	}
	if len(m.Output) != 0 {
		b = appendBin(appendStr(b, "output"), m.Output)
	}
	if m.Error != nil {
		b = appendErrorInfo(appendStr(b, "error"), m.Error)
	}
	b = appendInt(appendStr(b, "created_at"), m.CreatedAt)
	b = appendInt(appendStr(b, "updated_at"), m.UpdatedAt)
	if m.Deadline != 0 {
		b = appendInt(appendStr(b, "deadline"), m.Deadline)
	}
	if m.StartAt != 0 {
		b = appendInt(appendStr(b, "start_at"), m.StartAt)
	}
	if m.CancelRequested {
		b = appendBool(appendStr(b, "cancel_requested"), true)
	}
	if m.IdempotencyKey != "" {
		b = appendStr(appendStr(b, "idempotency_key"), m.IdempotencyKey)
	}
	if m.Flow != "" {
		b = appendStr(appendStr(b, "flow"), m.Flow)
	}
	if m.Slot != 0 {
		b = appendInt(appendStr(b, "slot"), m.Slot)
	}
	if m.Split != nil {
		var err error
		if b, err = appendReflect(appendStr(b, "split"), m.Split); err != nil {
			return b, err
		}
	}
	if m.JoinOf != 0 {
		b = appendUint(appendStr(b, "join_of"), uint64(m.JoinOf))
	}
	if m.JoinBranches != 0 {
		b = appendUint(appendStr(b, "join_branches"), uint64(m.JoinBranches))
	}
	if m.StoreUsed {
		b = appendBool(appendStr(b, "store_used"), true)
	}
	if len(m.History) != 0 {
		b = appendArrayLen(appendStr(b, "history"), len(m.History))
		for i := range m.History {
			b = appendStep(b, &m.History[i])
		}
	}
	b = appendRunTotals(appendStr(b, "totals"), &m.Totals)
	return b, nil
}

func readRunRecord(r *reader, m *protocol.RunRecord) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "v":
			m.V = uint16(r.uint(math.MaxUint16))
		case "id":
			m.ID = r.str()
		case "workflow":
			m.Workflow = r.name()
		case "def_version":
			m.DefVersion = r.name()
		case "status":
			m.Status = protocol.RunStatus(r.name())
		case "state":
			m.State = r.name()
		case "step":
			m.Step = uint32(r.uint(math.MaxUint32))
		case "path":
			m.Path = r.strs(m.Path)
		case "input":
			m.Input = r.bytes()
		case "input_format":
			m.InputFormat = protocol.InputFormat(r.name())
		case "output":
			m.Output = r.bytes()
		case "error":
			r.unset(m.Error != nil)
			m.Error = readErrorInfoPtr(r)
		case "created_at":
			m.CreatedAt = r.int(math.MinInt64, math.MaxInt64)
		case "updated_at":
			m.UpdatedAt = r.int(math.MinInt64, math.MaxInt64)
		case "deadline":
			m.Deadline = r.int(math.MinInt64, math.MaxInt64)
		case "start_at":
			m.StartAt = r.int(math.MinInt64, math.MaxInt64)
		case "cancel_requested":
			m.CancelRequested = r.bool()
		case "idempotency_key":
			m.IdempotencyKey = r.str()
		case "flow":
			m.Flow = r.name()
		case "slot":
			m.Slot = r.int(math.MinInt64, math.MaxInt64)
		case "split":
			r.unset(m.Split != nil)
			var s *protocol.SplitProgress
			if raw := r.skip(); !r.bad {
				if err := decodeReflect(raw, &s); err != nil {
					r.fail()
				}
			}
			m.Split = s
		case "join_of":
			m.JoinOf = uint32(r.uint(math.MaxUint32))
		case "join_branches":
			m.JoinBranches = uint32(r.uint(math.MaxUint32))
		case "store_used":
			m.StoreUsed = r.bool()
		case "history":
			r.unset(m.History != nil)
			m.History = readSteps(r, m.History)
		case "totals":
			readRunTotals(r, &m.Totals)
		default:
			r.fail()
		}
	}
}

// readSteps reads the history (nil as nil).
func readSteps(r *reader, old []protocol.Step) []protocol.Step {
	n, isNil := r.arrayLen()
	if isNil || r.bad {
		if isNil {
			return nil
		}
		return old
	}
	if n > len(r.b)-r.i { // each step takes a byte at least
		r.fail()
		return old
	}
	steps := make([]protocol.Step, n)
	for i := range steps {
		readStep(r, &steps[i])
	}
	return steps
}

// appendStep writes s as Step.EncodeMsgpack does.
func appendStep(b []byte, s *protocol.Step) []byte {
	n := fieldCount(4, s.Left != 0, s.Outcome != "", s.Attempts != 0, s.Worker != "",
		s.AttemptStarted != 0, s.AttemptDuration != 0, s.Error != nil, s.Split != nil)
	b = appendMapLen(b, n)
	b = appendUint(appendStr(b, "seq"), uint64(s.Seq))
	b = appendStr(appendStr(b, "state"), s.State)
	b = appendStr(appendStr(b, "kind"), string(s.Kind))
	b = appendInt(appendStr(b, "entered"), s.Entered)
	if s.Left != 0 {
		b = appendInt(appendStr(b, "left"), s.Left)
	}
	if s.Outcome != "" {
		b = appendStr(appendStr(b, "outcome"), string(s.Outcome))
	}
	if s.Attempts != 0 {
		b = appendUint(appendStr(b, "attempts"), uint64(s.Attempts))
	}
	if s.Worker != "" {
		b = appendStr(appendStr(b, "worker"), s.Worker)
	}
	if s.AttemptStarted != 0 {
		b = appendInt(appendStr(b, "attempt_started"), s.AttemptStarted)
	}
	if s.AttemptDuration != 0 {
		b = appendInt(appendStr(b, "attempt_duration"), s.AttemptDuration)
	}
	if s.Error != nil {
		b = appendErrorInfo(appendStr(b, "error"), s.Error)
	}
	if s.Split != nil {
		b = appendSplitSummary(appendStr(b, "split"), s.Split)
	}
	return b
}

func readStep(r *reader, s *protocol.Step) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "seq":
			s.Seq = uint32(r.uint(math.MaxUint32))
		case "state":
			s.State = r.name()
		case "kind":
			s.Kind = protocol.StepKind(r.name())
		case "entered":
			s.Entered = r.int(math.MinInt64, math.MaxInt64)
		case "left":
			s.Left = r.int(math.MinInt64, math.MaxInt64)
		case "outcome":
			s.Outcome = protocol.StepOutcome(r.name())
		case "attempts":
			s.Attempts = uint32(r.uint(math.MaxUint32))
		case "worker":
			s.Worker = r.name()
		case "attempt_started":
			s.AttemptStarted = r.int(math.MinInt64, math.MaxInt64)
		case "attempt_duration":
			s.AttemptDuration = r.int(math.MinInt64, math.MaxInt64)
		case "error":
			r.unset(s.Error != nil)
			s.Error = readErrorInfoPtr(r)
		case "split":
			r.unset(s.Split != nil)
			s.Split = readSplitSummaryPtr(r)
		default:
			r.fail()
		}
	}
}

func appendSplitSummary(b []byte, s *protocol.SplitSummary) []byte {
	n := fieldCount(2, s.Required != 0, s.Dynamic, s.Succeeded != 0, s.Failed != 0, s.TimedOut != 0,
		s.Cancelled != 0, s.Decision != "", s.JoinTimeout)
	b = appendMapLen(b, n)
	b = appendStr(appendStr(b, "strategy"), string(s.Strategy))
	if s.Required != 0 {
		b = appendUint(appendStr(b, "required"), uint64(s.Required))
	}
	if s.Dynamic {
		b = appendBool(appendStr(b, "dynamic"), true)
	}
	b = appendUint(appendStr(b, "total"), uint64(s.Total))
	if s.Succeeded != 0 {
		b = appendUint(appendStr(b, "succeeded"), uint64(s.Succeeded))
	}
	if s.Failed != 0 {
		b = appendUint(appendStr(b, "failed"), uint64(s.Failed))
	}
	if s.TimedOut != 0 {
		b = appendUint(appendStr(b, "timed_out"), uint64(s.TimedOut))
	}
	if s.Cancelled != 0 {
		b = appendUint(appendStr(b, "cancelled"), uint64(s.Cancelled))
	}
	if s.Decision != "" {
		b = appendStr(appendStr(b, "decision"), s.Decision)
	}
	if s.JoinTimeout {
		b = appendBool(appendStr(b, "join_timeout"), true)
	}
	return b
}

func readSplitSummaryPtr(r *reader) *protocol.SplitSummary {
	if r.nilValue() {
		return nil
	}
	s := new(protocol.SplitSummary)
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "strategy":
			s.Strategy = protocol.JoinStrategy(r.name())
		case "required":
			s.Required = uint32(r.uint(math.MaxUint32))
		case "dynamic":
			s.Dynamic = r.bool()
		case "total":
			s.Total = uint32(r.uint(math.MaxUint32))
		case "succeeded":
			s.Succeeded = uint32(r.uint(math.MaxUint32))
		case "failed":
			s.Failed = uint32(r.uint(math.MaxUint32))
		case "timed_out":
			s.TimedOut = uint32(r.uint(math.MaxUint32))
		case "cancelled":
			s.Cancelled = uint32(r.uint(math.MaxUint32))
		case "decision":
			s.Decision = r.name()
		case "join_timeout":
			s.JoinTimeout = r.bool()
		default:
			r.fail()
		}
	}
	return s
}

func appendRunTotals(b []byte, t *protocol.RunTotals) []byte {
	n := fieldCount(0, t.Steps != 0, t.Dropped != 0, t.Attempts != 0, t.FailedAttempts != 0, t.FailedTasks != 0)
	b = appendMapLen(b, n)
	if t.Steps != 0 {
		b = appendUint(appendStr(b, "steps"), uint64(t.Steps))
	}
	if t.Dropped != 0 {
		b = appendUint(appendStr(b, "dropped"), uint64(t.Dropped))
	}
	if t.Attempts != 0 {
		b = appendUint(appendStr(b, "attempts"), uint64(t.Attempts))
	}
	if t.FailedAttempts != 0 {
		b = appendUint(appendStr(b, "failed_attempts"), uint64(t.FailedAttempts))
	}
	if t.FailedTasks != 0 {
		b = appendUint(appendStr(b, "failed_tasks"), uint64(t.FailedTasks))
	}
	return b
}

func readRunTotals(r *reader, t *protocol.RunTotals) {
	for n := r.mapLen(); n > 0 && !r.bad; n-- {
		switch string(r.key()) {
		case "steps":
			t.Steps = uint32(r.uint(math.MaxUint32))
		case "dropped":
			t.Dropped = uint32(r.uint(math.MaxUint32))
		case "attempts":
			t.Attempts = uint32(r.uint(math.MaxUint32))
		case "failed_attempts":
			t.FailedAttempts = uint32(r.uint(math.MaxUint32))
		case "failed_tasks":
			t.FailedTasks = uint32(r.uint(math.MaxUint32))
		default:
			r.fail()
		}
	}
}
