package engine

import (
	"unicode/utf8"

	"github.com/cano-nats/cano/internal/joinrule"
	"github.com/cano-nats/cano/pkg/protocol"
)

// HistoryMax is how many steps a run record's History keeps: the most
// recent ones. Older steps are dropped and counted in Totals.Dropped, so a
// run that cycles 10,000 times keeps a record of bounded size; Totals
// (steps, attempts, failures) cover the whole run. A hundred task steps
// take about 10 KiB in the record.
const HistoryMax = 100

// The history is kept by the transition functions below. A transition
// copies the history before its first change (the record it was given
// shares the old slice and must not change), leaves the current step
// (leaveStep: outcome, the result's attempt facts, a split's counts) and
// opens the next (openStep).

// ownHistory returns the record's history as a slice this transition may
// change, copying it the first time.
func (t *tx) ownHistory() []protocol.Step {
	if !t.histOwned {
		old := t.rec.History
		h := make([]protocol.Step, len(old), len(old)+1)
		copy(h, old)
		t.rec.History = h
		t.histOwned = true
	}
	return t.rec.History
}

// current returns the last (current) step, nil when the record has none (a
// record written before history was kept).
func (t *tx) current() *protocol.Step {
	if len(t.rec.History) == 0 {
		return nil
	}
	h := t.ownHistory()
	return &h[len(h)-1]
}

// openStep records that the run entered its current state (rec.State at
// rec.Step), dropping the oldest step beyond HistoryMax.
func (t *tx) openStep(kind protocol.StepKind) {
	rec := t.rec
	h := append(t.ownHistory(), protocol.Step{Seq: rec.Step, State: rec.State, Kind: kind, Entered: t.now.UnixNano()})
	if over := len(h) - HistoryMax; over > 0 {
		copy(h, h[over:])
		clear(h[HistoryMax:])
		h = h[:HistoryMax]
		rec.Totals.Dropped += uint32(over)
	}
	rec.History = h
	rec.Totals.Steps++
}

// leaveStep ends the current step with outcome. r, when non-nil, is the
// task result that ended it (attempts, worker, final attempt's times). An
// active split's counts are copied into the step. A step already left
// keeps its time and task facts; only its outcome changes.
func (t *tx) leaveStep(outcome protocol.StepOutcome, r *protocol.TaskResult) {
	s := t.current()
	if s == nil {
		return
	}
	s.Outcome = outcome
	if s.Left != 0 {
		return
	}
	s.Left = t.now.UnixNano()
	if r != nil {
		s.Attempts = attemptsOf(r)
		s.Worker = r.Worker
		s.AttemptStarted, s.AttemptDuration = r.AttemptStarted, r.AttemptDuration
	}
	if sp := t.rec.Split; sp != nil && s.Kind == protocol.StepSplit && s.Seq == t.rec.Step {
		s.Split = splitSummary(sp)
	}
}

// endStep ends the current step with outcome and the error info (category and
// message, cut to protocol.StepErrorMax).
func (t *tx) endStep(outcome protocol.StepOutcome, info *protocol.ErrorInfo) {
	t.leaveStep(outcome, nil)
	if s := t.current(); s != nil {
		s.Error = stepError(info)
	}
}

// attemptsOf is how many attempts of the task r reports were made: none
// for a failure refused before its first attempt (an open circuit breaker),
// at least one for a success.
func attemptsOf(r *protocol.TaskResult) uint32 {
	if r.Status == protocol.ResultOK {
		return max(r.Attempts, 1)
	}
	return r.Attempts
}

// countResult adds a task result to the run's totals.
func (t *tx) countResult(r *protocol.TaskResult) {
	tot := &t.rec.Totals
	n := attemptsOf(r)
	tot.Attempts += n
	if r.Status == protocol.ResultOK {
		tot.FailedAttempts += n - 1
		return
	}
	tot.FailedAttempts += n
	tot.FailedTasks++
}

func splitSummary(sp *protocol.SplitProgress) *protocol.SplitSummary {
	need, _ := joinrule.Required(sp.Join, sp.Total)
	timedOut := min(sp.TimedOut, sp.Failed)
	return &protocol.SplitSummary{
		Strategy:  sp.Join.Strategy,
		Required:  need,
		Dynamic:   sp.Dynamic,
		Total:     sp.Total,
		Succeeded: sp.Succeeded,
		Failed:    sp.Failed - timedOut,
		TimedOut:  timedOut,
		Cancelled: sp.Total - min(sp.Total, sp.Succeeded+sp.Failed),
	}
}

// stepError keeps an error's category and message, the message cut to
// protocol.StepErrorMax bytes.
func stepError(info *protocol.ErrorInfo) *protocol.ErrorInfo {
	if info == nil {
		return nil
	}
	msg := info.Message
	if len(msg) > protocol.StepErrorMax {
		const ellipsis = "…"
		i := protocol.StepErrorMax - len(ellipsis)
		for i > 0 && !utf8.RuneStart(msg[i]) {
			i--
		}
		msg = msg[:i] + ellipsis
	}
	return &protocol.ErrorInfo{Category: info.Category, Message: msg}
}

// isTimeout reports whether a failed result's error is an attempt timeout
// (itself, or the cause of its exhausted retries), as the worker classes a
// branch outcome timed_out.
func isTimeout(info *protocol.ErrorInfo) bool {
	return info != nil && (info.Category == protocol.CategoryTimeout ||
		(info.Cause != nil && info.Cause.Category == protocol.CategoryTimeout))
}
