package engine

import (
	"math"
	"time"

	"github.com/cano-nats/cano/pkg/protocol"
)

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
