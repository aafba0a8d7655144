package scheduler

import (
	"fmt"
	"math"
	"time"

	"github.com/cano-nats/cano/pkg/protocol"
)

// Backoff defaults (cano's BackoffPolicy::default).
const (
	BackoffInitialDefault    = time.Second
	BackoffMultiplierDefault = 2.0
	BackoffMaxDelayDefault   = 5 * time.Minute
	BackoffJitterDefault     = 0.1
)

// BackoffPolicy says how long a flow waits after failed runs, and when it
// trips. The zero value is cano's default: 1 s, ×2, at most 5 min, jitter
// 0.1, never trips.
type BackoffPolicy struct {
	// Initial is the delay after the first failure. Defaults to
	// BackoffInitialDefault.
	Initial time.Duration
	// Multiplier grows the delay per further failure. Defaults to
	// BackoffMultiplierDefault; must be at least 1.
	Multiplier float64
	// MaxDelay caps the delay. Defaults to BackoffMaxDelayDefault.
	MaxDelay time.Duration
	// Jitter spreads the delay by ±Jitter×delay, in [0, 1]. Zero means
	// BackoffJitterDefault; -1 means no jitter.
	Jitter float64
	// StreakLimit trips the flow after that many consecutive failures; a
	// tripped flow does not run until [Client.Reset]. Zero never trips.
	StreakLimit uint32
}

func (p BackoffPolicy) withDefaults() BackoffPolicy {
	if p.Initial == 0 {
		p.Initial = BackoffInitialDefault
	}
	if p.Multiplier == 0 {
		p.Multiplier = BackoffMultiplierDefault
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = BackoffMaxDelayDefault
	}
	if p.Jitter == 0 {
		p.Jitter = BackoffJitterDefault
	}
	if p.Jitter < 0 {
		p.Jitter = 0
	}
	return p
}

func (p BackoffPolicy) validate() error {
	switch {
	case p.Initial < 0:
		return fmt.Errorf("Backoff.Initial must not be negative, got %s", p.Initial)
	case p.MaxDelay < 0:
		return fmt.Errorf("Backoff.MaxDelay must not be negative, got %s", p.MaxDelay)
	case p.Multiplier != 0 && !(p.Multiplier >= 1) || math.IsInf(p.Multiplier, 0):
		return fmt.Errorf("Backoff.Multiplier must be at least 1, got %v", p.Multiplier)
	case p.Jitter != -1 && !(p.Jitter >= 0 && p.Jitter <= 1):
		return fmt.Errorf("Backoff.Jitter must be in [0, 1] or -1, got %v", p.Jitter)
	}
	return nil
}

// Delay returns the wait after the streak-th consecutive failure (streak ≥ 1)
// as cano computes it: min(Initial·Multiplier^(streak−1), MaxDelay), spread
// by the jitter, capped again at MaxDelay. r in [0, 1) picks the jitter: 0.5
// is none, 0 is −Jitter, just under 1 is +Jitter. It is a pure function.
func (p BackoffPolicy) Delay(streak uint32, r float64) time.Duration {
	p = p.withDefaults()
	if streak == 0 {
		streak = 1
	}
	d := float64(p.Initial) * math.Pow(p.Multiplier, float64(streak-1))
	if d > float64(p.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(p.MaxDelay)
	}
	d *= 1 + p.Jitter*(2*r-1)
	if d > float64(p.MaxDelay) {
		d = float64(p.MaxDelay)
	}
	if d < 0 {
		d = 0
	}
	return time.Duration(d)
}

func (p BackoffPolicy) toWire() protocol.BackoffPolicy {
	p = p.withDefaults()
	return protocol.BackoffPolicy{
		Initial:     int64(p.Initial),
		Multiplier:  p.Multiplier,
		MaxDelay:    int64(p.MaxDelay),
		Jitter:      p.Jitter,
		StreakLimit: p.StreakLimit,
	}
}

func backoffFromWire(w protocol.BackoffPolicy) BackoffPolicy {
	p := BackoffPolicy{
		Initial:     time.Duration(w.Initial),
		Multiplier:  w.Multiplier,
		MaxDelay:    time.Duration(w.MaxDelay),
		Jitter:      w.Jitter,
		StreakLimit: w.StreakLimit,
	}
	if p.Jitter == 0 {
		p.Jitter = -1 // stored resolved: zero means none
	}
	return p
}
