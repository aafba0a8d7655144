package fsm

import (
	"math"
	"time"

	"github.com/cano-nats/cano/pkg/protocol"
)

// Retry defaults, as cano's RetryMode::default(): exponential(3).
const (
	RetryMaxRetriesDefault = 3
	RetryBaseDelayDefault  = 100 * time.Millisecond
	RetryMultiplierDefault = 2.0
	RetryMaxDelayDefault   = 30 * time.Second
	RetryJitterDefault     = 0.1
)

// RetryMode is a task's retry policy: none, fixed, or exponential backoff.
// The zero value is cano's default: exponential backoff with 3 retries
// (4 attempts), 100 ms base, ×2, 30 s cap, ±10 % jitter.
type RetryMode struct {
	p   protocol.RetryPolicy
	set bool
}

// RetryNone makes one attempt.
func RetryNone() RetryMode {
	return RetryMode{p: protocol.RetryPolicy{Mode: protocol.RetryNone}, set: true}
}

// RetryFixed makes retries+1 attempts with a constant delay between them.
func RetryFixed(retries uint32, delay time.Duration) RetryMode {
	return RetryMode{p: protocol.RetryPolicy{Mode: protocol.RetryFixed, MaxRetries: retries, BaseDelay: int64(delay)}, set: true}
}

// RetryExponential makes maxRetries+1 attempts with cano's default backoff
// (100 ms base, ×2, 30 s cap, 10 % jitter).
func RetryExponential(maxRetries uint32) RetryMode {
	return RetryExponentialCustom(maxRetries, RetryBaseDelayDefault, RetryMultiplierDefault, RetryMaxDelayDefault, RetryJitterDefault)
}

// RetryExponentialCustom is exponential backoff with every knob: the delay
// before retry k (k = 0, 1, …) is min(base·multiplier^k, maxDelay)·(1 + jitter·U[-1,1]).
// A non-finite or non-positive multiplier means 1; jitter is clamped to [0,1].
func RetryExponentialCustom(maxRetries uint32, base time.Duration, multiplier float64, maxDelay time.Duration, jitter float64) RetryMode {
	if math.IsNaN(multiplier) || math.IsInf(multiplier, 0) || multiplier <= 0 {
		multiplier = 1
	}
	if math.IsNaN(jitter) || jitter < 0 {
		jitter = 0
	}
	if jitter > 1 {
		jitter = 1
	}
	return RetryMode{p: protocol.RetryPolicy{
		Mode: protocol.RetryExponential, MaxRetries: maxRetries, BaseDelay: int64(base),
		Multiplier: multiplier, MaxDelay: int64(maxDelay), Jitter: jitter,
	}, set: true}
}

// Policy returns the wire form.
func (r RetryMode) Policy() protocol.RetryPolicy {
	if !r.set {
		return RetryExponential(RetryMaxRetriesDefault).p
	}
	return r.p
}

// RetryModeFromPolicy rebuilds a RetryMode from its wire form.
func RetryModeFromPolicy(p protocol.RetryPolicy) RetryMode { return RetryMode{p: p, set: true} }

// MaxAttempts is the number of attempts the policy allows (retries + 1).
func MaxAttempts(p protocol.RetryPolicy) uint32 {
	if p.Mode == protocol.RetryNone {
		return 1
	}
	if p.MaxRetries == math.MaxUint32 {
		return math.MaxUint32
	}
	return p.MaxRetries + 1
}

// RetryDelay is the delay before retry k (k = 0 is the delay after the first
// failed attempt). u is a uniform sample in [-1, 1] that drives the jitter,
// so the function is pure: callers pass rand.Float64()*2-1.
func RetryDelay(p protocol.RetryPolicy, k uint32, u float64) time.Duration {
	switch p.Mode {
	case protocol.RetryNone:
		return 0
	case protocol.RetryFixed:
		return time.Duration(p.BaseDelay)
	}
	mult := p.Multiplier
	if math.IsNaN(mult) || math.IsInf(mult, 0) || mult <= 0 {
		mult = 1
	}
	d := float64(p.BaseDelay) * math.Pow(mult, float64(k))
	if p.MaxDelay > 0 && d > float64(p.MaxDelay) {
		d = float64(p.MaxDelay)
	}
	if u < -1 {
		u = -1
	}
	if u > 1 {
		u = 1
	}
	d *= 1 + p.Jitter*u
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	if d < float64(time.Millisecond) && p.BaseDelay > 0 {
		d = float64(time.Millisecond)
	}
	return time.Duration(d)
}
