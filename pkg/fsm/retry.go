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
