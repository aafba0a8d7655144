package breaker

import (
	"fmt"
	"math"
	"time"
)

// Defaults and limits (cano's CircuitPolicy defaults).
const (
	// FailureThresholdDefault is how many consecutive failures trip a
	// closed breaker.
	FailureThresholdDefault = 5
	// ResetTimeoutDefault is how long a tripped breaker stays open.
	ResetTimeoutDefault = 30 * time.Second
	// HalfOpenMaxCallsDefault is how many probes a half-open breaker admits
	// at once, and how many successes close it.
	HalfOpenMaxCallsDefault = 1
	// halfOpenMaxCallsMax is the largest HalfOpenMaxCalls accepted
	// (cano rejects values above u32::MAX/2).
	halfOpenMaxCallsMax = math.MaxUint32 / 2
	// failureThresholdMax is the largest FailureThreshold accepted.
	failureThresholdMax = math.MaxUint32
	// TimeoutDefault bounds a store operation whose context has no deadline.
	TimeoutDefault = 5 * time.Second
)

// Policy is a breaker's thresholds (cano's CircuitPolicy). The zero value
// means all defaults; a zero field takes its default.
type Policy struct {
	// FailureThreshold is how many consecutive failures (successes reset the
	// count) trip a closed breaker. Defaults to FailureThresholdDefault;
	// negative or above 2^32-1 is an error.
	FailureThreshold int
	// ResetTimeout is how long the breaker stays open before the next
	// acquire turns it half-open. Defaults to ResetTimeoutDefault; negative
	// is an error.
	ResetTimeout time.Duration
	// HalfOpenMaxCalls is both the number of probes a half-open breaker
	// admits concurrently and the number of probe successes that close it.
	// Defaults to HalfOpenMaxCallsDefault; negative or above 2^31-1 (cano's
	// limit) is an error.
	HalfOpenMaxCalls int
}

func (p Policy) withDefaults() Policy {
	if p.FailureThreshold == 0 {
		p.FailureThreshold = FailureThresholdDefault
	}
	if p.ResetTimeout == 0 {
		p.ResetTimeout = ResetTimeoutDefault
	}
	if p.HalfOpenMaxCalls == 0 {
		p.HalfOpenMaxCalls = HalfOpenMaxCallsDefault
	}
	return p
}

// Check returns an error matching [ErrInvalidSettings] when p, its zero
// fields taking their defaults, cannot configure a breaker.
func (p Policy) Check() error { return p.withDefaults().validate() }

func (p Policy) validate() error {
	if p.FailureThreshold < 1 || p.FailureThreshold > failureThresholdMax {
		return fmt.Errorf("%w: FailureThreshold %d: must be in [1, %d]", ErrInvalidSettings, p.FailureThreshold, failureThresholdMax)
	}
	if p.ResetTimeout < 0 {
		return fmt.Errorf("%w: ResetTimeout %s: must not be negative", ErrInvalidSettings, p.ResetTimeout)
	}
	if p.HalfOpenMaxCalls < 1 || p.HalfOpenMaxCalls > halfOpenMaxCallsMax {
		return fmt.Errorf("%w: HalfOpenMaxCalls %d: must be in [1, %d]", ErrInvalidSettings, p.HalfOpenMaxCalls, halfOpenMaxCallsMax)
	}
	return nil
}

// Clock tells the time. Tests inject a manual clock.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Transition describes one state change of a breaker, reported to
// Settings.OnTransitionFunc.
type Transition struct {
	// Name is the breaker's name.
	Name string
	// From and To are the states before and after.
	From, To State
	// Epoch is the new session's epoch (for a shared breaker, its KV revision).
	Epoch uint64
	// At is the clock time of the transition.
	At time.Time
	// OpenUntil is set when To is [StateOpen].
	OpenUntil time.Time
}

// Settings configures a [Breaker]. The zero value is valid and uses the
// defaults.
type Settings struct {
	// Policy holds the thresholds; zero fields take their defaults.
	Policy Policy
	// Clock is the time source; nil means the real clock.
	Clock Clock
	// OnTransitionFunc, if not nil, is called synchronously after every
	// state change this Breaker makes (after the store accepted it). For a
	// shared breaker exactly one process reports each transition: the one
	// whose write made it. Transitions made by other processes, and by
	// a reset, are not reported. It must not block for long and must not call
	// back into the Breaker's Acquire.
	OnTransitionFunc func(Transition)
	// Timeout bounds store operations whose context has no deadline, and
	// [Permit.Release]. Defaults to TimeoutDefault; negative is an error.
	Timeout time.Duration
}

func (s Settings) withDefaults() Settings {
	s.Policy = s.Policy.withDefaults()
	if s.Clock == nil {
		s.Clock = realClock{}
	}
	if s.Timeout == 0 {
		s.Timeout = TimeoutDefault
	}
	return s
}

func (s Settings) validate() error {
	if err := s.Policy.validate(); err != nil {
		return err
	}
	if s.Timeout < 0 {
		return fmt.Errorf("%w: Timeout %s: must not be negative", ErrInvalidSettings, s.Timeout)
	}
	return nil
}
