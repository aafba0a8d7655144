package breaker

import (
	"time"
)

// State is a breaker's phase. The values match protocol.BreakerPhase, so
// they are what the breakers bucket stores.
type State string

// Breaker states. See state_machine.md for the diagram.
const (
	// StateClosed admits every call and counts consecutive failures.
	StateClosed State = "closed"
	// StateOpen rejects every call with [ErrOpen] until its cool-down
	// passes; the first acquire after that turns it half-open.
	StateOpen State = "open"
	// StateHalfOpen admits up to Policy.HalfOpenMaxCalls concurrent probes.
	StateHalfOpen State = "half_open"
)

// States returns every state, in a fresh slice.
func States() []State { return []State{StateClosed, StateOpen, StateHalfOpen} }

// String returns the state's wire name.
func (s State) String() string { return string(s) }

// Snapshot is a breaker's complete state at one moment: what a [Store]
// keeps. The zero Snapshot is a fresh closed breaker at epoch 0 (an empty
// State reads as [StateClosed]).
type Snapshot struct {
	// State is the phase; "" means [StateClosed].
	State State
	// ConsecutiveFailures counts failures since the last success while
	// closed.
	ConsecutiveFailures int
	// OpenUntil is when an open breaker admits its next probe.
	OpenUntil time.Time
	// HalfOpenInFlight counts admitted probes not yet reported;
	// HalfOpenSuccesses counts probe successes in this half-open session.
	HalfOpenInFlight, HalfOpenSuccesses int
	// Epoch identifies the current session: it changes on every transition
	// and only grows. Outcomes of permits from another epoch are ignored.
	Epoch uint64
	// UpdatedAt is the clock time of the last change.
	UpdatedAt time.Time
	// Policy is the policy of the breaker that last changed the state
	// (informational, shown by pkg/client's Breakers).
	Policy Policy
}

func (s Snapshot) phase() State {
	if s.State == "" {
		return StateClosed
	}
	return s.State
}

// ticket is what a permit remembers about its admission.
type ticket struct {
	epoch    uint64
	halfOpen bool
}

// transition starts a new session in state to: the epoch grows, probe
// counters reset, entering Closed clears the failure count and entering Open
// sets a fresh deadline.
func (s Snapshot) transition(p Policy, to State, now time.Time) Snapshot {
	s.State = to
	s.Epoch++
	s.HalfOpenInFlight, s.HalfOpenSuccesses = 0, 0
	s.OpenUntil = time.Time{}
	switch to {
	case StateClosed:
		s.ConsecutiveFailures = 0
	case StateOpen:
		s.OpenUntil = now.Add(p.ResetTimeout)
	}
	s.UpdatedAt = now
	return s
}

// acquire decides whether a call may run at now. It returns the next state,
// whether that differs from s (and must be stored), and the permit's ticket,
// or [ErrOpen] / [ErrHalfOpenExhausted] (with s unchanged).
//
//   - Closed: admit; nothing changes.
//   - Open before OpenUntil: reject with ErrOpen.
//   - Open at/after OpenUntil: lazily turn HalfOpen (new epoch) and admit
//     this call as the first probe.
//   - HalfOpen: admit while fewer than HalfOpenMaxCalls probes are in
//     flight, else reject with ErrHalfOpenExhausted.
func (s Snapshot) acquire(p Policy, now time.Time) (Snapshot, bool, ticket, error) {
	switch s.phase() {
	case StateClosed:
		return s, false, ticket{epoch: s.Epoch}, nil
	case StateOpen:
		if now.Before(s.OpenUntil) {
			return s, false, ticket{}, ErrOpen
		}
		s = s.transition(p, StateHalfOpen, now)
	}
	if s.HalfOpenInFlight >= p.HalfOpenMaxCalls {
		return s, false, ticket{}, ErrHalfOpenExhausted
	}
	s.HalfOpenInFlight++
	s.UpdatedAt = now
	return s, true, ticket{epoch: s.Epoch, halfOpen: true}, nil
}

// success records a successful call. A ticket from another epoch changes
// nothing. Closed: the failure count resets. HalfOpen: the probe's slot is
// freed and the success counted; HalfOpenMaxCalls successes close it.
func (s Snapshot) success(p Policy, t ticket, now time.Time) (Snapshot, bool) {
	if t.epoch != s.Epoch {
		return s, false
	}
	changed := false
	if t.halfOpen && s.HalfOpenInFlight > 0 {
		s.HalfOpenInFlight--
		changed = true
	}
	switch s.phase() {
	case StateClosed:
		if s.ConsecutiveFailures != 0 {
			s.ConsecutiveFailures = 0
			changed = true
		}
	case StateHalfOpen:
		s.HalfOpenSuccesses++
		changed = true
		if s.HalfOpenSuccesses >= p.HalfOpenMaxCalls {
			return s.transition(p, StateClosed, now), true
		}
	default:
		// Open with a current epoch is unreachable: every way into Open
		// bumps the epoch.
		return s, false
	}
	if changed {
		s.UpdatedAt = now
	}
	return s, changed
}

// failure records a failed call. A ticket from another epoch changes
// nothing. Closed: the failure count grows and reaching FailureThreshold
// trips it Open until now+ResetTimeout. HalfOpen: any failure re-opens it
// with a fresh deadline.
func (s Snapshot) failure(p Policy, t ticket, now time.Time) (Snapshot, bool) {
	if t.epoch != s.Epoch {
		return s, false
	}
	switch s.phase() {
	case StateClosed:
		s.ConsecutiveFailures++
		if s.ConsecutiveFailures >= p.FailureThreshold {
			return s.transition(p, StateOpen, now), true
		}
		s.UpdatedAt = now
		return s, true
	case StateHalfOpen:
		return s.transition(p, StateOpen, now), true
	default:
		return s, false
	}
}
