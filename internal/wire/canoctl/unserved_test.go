package canoctl

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
)

func TestUnserved(t *testing.T) {
	t.Parallel()
	workers := []client.WorkerInfo{{Kinds: []string{"fetch", "noop"}}, {Kinds: []string{"charge"}}}
	for _, tc := range []struct {
		name  string
		state client.StateInfo
		want  []string
	}{
		{"task served", client.StateInfo{Task: "charge"}, nil},
		{"task unserved", client.StateInfo{Task: "boom"}, []string{"boom"}},
		{"split, some branches unserved, each named once", client.StateInfo{Branches: []string{"fetch", "slow", "slow", "odd"}}, []string{"slow", "odd"}},
		{"exit: no task", client.StateInfo{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, unserved(tc.state, workers))
		})
	}
	require.Equal(t, []string{"boom"}, unserved(client.StateInfo{Task: "boom"}, nil), "no live worker at all")
}

func TestCounted(t *testing.T) {
	t.Parallel()
	require.Equal(t, "0 steps", counted(0, "step"))
	require.Equal(t, "1 step", counted(1, "step"))
	require.Equal(t, "2 failed attempts", counted(2, "failed attempt"))
}
