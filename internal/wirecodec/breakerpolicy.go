package wirecodec

import (
	"math"
	"time"

	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/protocol"
)

// BreakerPolicyFromWire converts a wire policy; zero fields take the
// defaults when the policy is used.
func BreakerPolicyFromWire(p protocol.BreakerPolicy) breaker.Policy {
	return breaker.Policy{
		FailureThreshold: int(p.FailureThreshold),
		ResetTimeout:     time.Duration(p.ResetTimeout),
		HalfOpenMaxCalls: int(p.HalfOpenMaxCalls),
	}
}

// BreakerPolicyToWire converts p to its wire form, clamping counts into
// the wire's range (breaker.Policy.Check refuses those outside it).
func BreakerPolicyToWire(p breaker.Policy) protocol.BreakerPolicy {
	return protocol.BreakerPolicy{
		FailureThreshold: uint32(max(0, min(p.FailureThreshold, math.MaxUint32))),
		ResetTimeout:     int64(p.ResetTimeout),
		HalfOpenMaxCalls: uint32(max(0, min(p.HalfOpenMaxCalls, math.MaxUint32))),
	}
}
