package scheduler

import (
	"time"

	"github.com/cano-nats/cano/pkg/protocol"
)

// The status transitions below are pure: they take the stored status and
// now, and return what to write. The leader applies them in a CAS loop, so
// a conflicting write (another leader, a client's Reset) re-applies them to
// the fresh status.

// fireKind says what asks a flow to run.
type fireKind int

const (
	fireCron   fireKind = iota // a cron slot
	fireEvery                  // an Every flow's interval elapsed
	fireManual                 // a manual trigger (bypasses backoff, not a trip)
)

// decision is the outcome of reserve.
type decision int

const (
	decideFire        decision = iota // reserved: publish the trigger
	decideSkip                        // not run; counted in SkippedFires
	decideNoop                        // nothing to do (already handled, not due)
	decideRejectBusy                  // manual trigger while running
	decideRejectTrips                 // manual trigger while tripped
	decideError                       // the status could not be written
)

func (d decision) String() string {
	switch d {
	case decideFire:
		return "fire"
	case decideSkip:
		return "skip"
	case decideNoop:
		return "noop"
	case decideRejectBusy:
		return "reject_running"
	case decideRejectTrips:
		return "reject_tripped"
	case decideError:
		return "error"
	}
	return "unknown"
}

// newStatus is the status of a flow that never ran.
func newStatus(id string) protocol.FlowStatus {
	return protocol.FlowStatus{V: protocol.SchemaVersion, ID: id, Phase: protocol.FlowIdle}
}

// reserve decides whether a fire of kind k for slot starts runID at now
// (cano's reserve_flow), and returns the status to write. For decideNoop
// nothing is written.
func reserve(st protocol.FlowStatus, k fireKind, slot time.Time, runID string, now time.Time) (protocol.FlowStatus, decision) {
	if k == fireCron && st.LastSlot >= slot.UnixNano() {
		return st, decideNoop // this slot was handled (by us or another leader)
	}
	if k != fireManual && st.PausedAt != 0 {
		return st, decideNoop // paused: scheduled fires are not taken, nor counted
	}
	if k == fireCron && slot.UnixNano() <= st.ResumedAt {
		return st, decideNoop // a slot missed while paused: not caught up
	}
	busy := st.Phase == protocol.FlowRunning
	tripped := st.Phase == protocol.FlowTripped
	switch k {
	case fireManual:
		if st.CurrentRun == runID {
			return st, decideNoop // already reserved
		}
		if busy {
			return st, decideRejectBusy
		}
		if tripped {
			return st, decideRejectTrips
		}
	case fireEvery:
		if busy || tripped || st.NextEligible > now.UnixNano() {
			return st, decideNoop // not due (stale view)
		}
	case fireCron:
		st.LastSlot = slot.UnixNano()
		if busy || tripped || st.NextEligible > now.UnixNano() {
			st.SkippedFires++
			return st, decideSkip
		}
	}
	st.Phase = protocol.FlowRunning
	st.RunCount++
	st.LastRun = now.UnixNano()
	st.CurrentRun = runID
	return st, decideFire
}

// outcome is how a run ended.
type outcome int

const (
	outcomeCompleted outcome = iota
	outcomeFailed
	outcomeCancelled
)

// finish applies the end of runID to st (cano's status update after a run).
// It returns false when st is not running runID (a late or foreign event).
// every is the interval of an Every flow (0 otherwise); r picks the jitter.
func finish(st protocol.FlowStatus, runID string, out outcome, errMsg string, bp BackoffPolicy,
	every time.Duration, now time.Time, r float64) (protocol.FlowStatus, bool) {
	if st.Phase != protocol.FlowRunning || st.CurrentRun != runID {
		return st, false
	}
	st.CurrentRun = ""
	var next int64
	if every > 0 {
		next = now.Add(every).UnixNano() // fixed delay after the run ends
	}
	switch out {
	case outcomeCompleted:
		st.Phase = protocol.FlowCompleted
		st.FailureStreak = 0
		st.LastError = ""
		st.NextEligible = next
	case outcomeCancelled:
		// A cancelled run is not a failure: streak untouched.
		st.Phase = protocol.FlowIdle
		st.NextEligible = max(st.NextEligible, next)
	case outcomeFailed:
		st.FailureStreak++
		st.LastError = errMsg
		if bp.StreakLimit > 0 && st.FailureStreak >= bp.StreakLimit {
			st.Phase = protocol.FlowTripped
			st.NextEligible = 0
			break
		}
		st.Phase = protocol.FlowBackoff
		st.NextEligible = max(now.Add(bp.Delay(st.FailureStreak, r)).UnixNano(), next)
	}
	return st, true
}

// reset clears the failure streak and backoff of st (cano's reset_flow):
// Idle unless running (a running failure may re-park it).
func reset(st protocol.FlowStatus) protocol.FlowStatus {
	st.FailureStreak = 0
	st.NextEligible = 0
	if st.Phase != protocol.FlowRunning {
		st.Phase = protocol.FlowIdle
	}
	return st
}

// pause marks st paused at now. It returns false (nothing to write) when st
// is already paused. A run in progress goes on; the schedule fires nothing
// until resume.
func pause(st protocol.FlowStatus, now time.Time) (protocol.FlowStatus, bool) {
	if st.PausedAt != 0 {
		return st, false
	}
	st.PausedAt = now.UnixNano()
	return st, true
}

// resume clears the pause of st at now. It returns false (nothing to write)
// when st is not paused. Slots missed while paused are not fired: a cron
// flow's slots at or before now are skipped (ResumedAt), and an Every flow
// (every > 0) whose next eligible time passed while paused moves it to the
// first time after now on its grid (next eligible + k·every). An Every flow
// that never ran, or was reset (next eligible 0), runs at once, as when it
// was added.
func resume(st protocol.FlowStatus, every time.Duration, now time.Time) (protocol.FlowStatus, bool) {
	if st.PausedAt == 0 {
		return st, false
	}
	st.PausedAt = 0
	n := now.UnixNano()
	st.ResumedAt = n
	if every > 0 && st.NextEligible != 0 && st.NextEligible <= n {
		d := every.Nanoseconds()
		st.NextEligible += ((n-st.NextEligible)/d + 1) * d
	}
	return st, true
}
