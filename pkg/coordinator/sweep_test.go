package coordinator

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/protocol"
)

func TestStallBound(t *testing.T) {
	t.Parallel()
	const ackWait, stallAfter = 30 * time.Second, 10 * time.Minute
	none := protocol.RetryPolicy{Mode: protocol.RetryNone}
	fixed := func(retries uint32, d time.Duration) protocol.RetryPolicy {
		return protocol.RetryPolicy{Mode: protocol.RetryFixed, MaxRetries: retries, BaseDelay: int64(d)}
	}
	exp := protocol.RetryPolicy{Mode: protocol.RetryExponential, MaxRetries: 3, BaseDelay: int64(100 * time.Millisecond),
		Multiplier: 2, MaxDelay: int64(30 * time.Second), Jitter: 0.1}
	task := func(p protocol.RetryPolicy, timeout time.Duration) protocol.TaskSpec {
		return protocol.TaskSpec{Kind: "k", Retry: p, AttemptTimeout: int64(timeout)}
	}
	tests := []struct {
		name string
		sh   stepShape
		want time.Duration
	}{
		{"no tasks, nothing bounded", stepShape{}, stallAfter},
		{"task without attempt timeout", stepShape{Tasks: []protocol.TaskSpec{task(none, 0)}}, stallAfter},
		{"one attempt", stepShape{Tasks: []protocol.TaskSpec{task(none, 10*time.Second)}}, 10*time.Second + ackWait},
		{"fixed retries: attempts × timeout + delays", stepShape{Tasks: []protocol.TaskSpec{task(fixed(2, time.Second), 10*time.Second)}},
			3*10*time.Second + 2*time.Second + ackWait},
		{"exponential with jitter at its top", stepShape{Tasks: []protocol.TaskSpec{task(exp, time.Second)}},
			4*time.Second + (110+220+440)*time.Millisecond + ackWait},
		{"unbounded retries", stepShape{Tasks: []protocol.TaskSpec{task(fixed(math.MaxUint32, time.Second), time.Second)}}, stallAfter},
		{"longest branch", stepShape{Tasks: []protocol.TaskSpec{task(none, time.Second), task(none, 5*time.Second)}}, 5*time.Second + ackWait},
		{"one unbounded branch makes the step unbounded", stepShape{Tasks: []protocol.TaskSpec{task(none, time.Second), task(none, 0)}}, stallAfter},
		{"join timeout bounds unbounded branches", stepShape{Tasks: []protocol.TaskSpec{task(none, 0)}, JoinTimeout: 5 * time.Second}, 5*time.Second + ackWait},
		{"join timeout longer than the tasks", stepShape{Tasks: []protocol.TaskSpec{task(none, time.Second)}, JoinTimeout: time.Hour}, time.Second + ackWait},
		{"deadline first", stepShape{Tasks: []protocol.TaskSpec{task(none, time.Hour)}, HasDeadline: true, UntilDeadline: time.Minute}, time.Minute + ackWait},
		{"deadline bounds an unbounded task", stepShape{Tasks: []protocol.TaskSpec{task(none, 0)}, HasDeadline: true, UntilDeadline: time.Minute}, time.Minute + ackWait},
		{"deadline passed", stepShape{HasDeadline: true, UntilDeadline: -time.Minute}, ackWait},
		{"deadline later than the task", stepShape{Tasks: []protocol.TaskSpec{task(none, time.Second)}, HasDeadline: true, UntilDeadline: time.Hour}, time.Second + ackWait},
		{"huge timeout saturates", stepShape{Tasks: []protocol.TaskSpec{task(fixed(3, 0), math.MaxInt64/2)}}, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, stallBound(tc.sh, ackWait, stallAfter))
		})
	}
}
