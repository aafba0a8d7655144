package wirecodec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/breaker"
)

func TestPolicyProtocolRoundTrip(t *testing.T) {
	t.Parallel()
	p := breaker.Policy{FailureThreshold: 7, ResetTimeout: 3 * time.Second, HalfOpenMaxCalls: 2}
	require.Equal(t, p, BreakerPolicyFromWire(BreakerPolicyToWire(p)))
	require.Equal(t, breaker.Policy{}, BreakerPolicyFromWire(BreakerPolicyToWire(breaker.Policy{})))
}
