package pretty

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
)

func TestStateTasksAndAttempts(t *testing.T) {
	t.Parallel()
	params := []byte{0x81, 0xa1, 'n', 0x01} // {"n": 1}
	exp := &client.TaskPolicy{Retry: "exponential", MaxRetries: 3, Delay: 100 * time.Millisecond, Multiplier: 2,
		MaxDelay: 5 * time.Second, Jitter: 0.1, AttemptTimeout: 2 * time.Second, Breaker: "pay"}
	fixed := &client.TaskPolicy{Retry: "fixed", MaxRetries: 2, Delay: time.Second}
	none := &client.TaskPolicy{Retry: "none"}
	for _, tc := range []struct {
		name            string
		s               client.StateInfo
		tasks, attempts string
	}{
		{"a task with parameters and every policy field",
			client.StateInfo{Kind: client.StateTask, Task: "charge", Params: params, Policy: exp},
			`charge {"n":1}`, "3 retries from 100ms ×2 up to 5s, jitter 0.1, attempt timeout 2s, breaker pay"},
		{"a task without parameters, fixed retries",
			client.StateInfo{Kind: client.StateTask, Task: "collect", Params: []byte{0x80}, Policy: fixed},
			"collect", "2 retries every 1s"},
		{"a split whose branches share a policy",
			client.StateInfo{Kind: client.StateSplit, Branches: []string{"a", "b"}, BranchParams: [][]byte{params, nil},
				BranchPolicies: []*client.TaskPolicy{none, none}},
			`a {"n":1}, b`, "no retry"},
		{"a split whose branches differ",
			client.StateInfo{Kind: client.StateSplit, Branches: []string{"a", "b"}, BranchPolicies: []*client.TaskPolicy{none, fixed}},
			"a, b", "per branch"},
		{"an exit", client.StateInfo{Kind: client.StateExit}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.tasks, StateTasks(tc.s))
			require.Equal(t, tc.attempts, StateAttempts(tc.s))
		})
	}
}
