package coordinator

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRepeatsAllow(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		key        string
		at         time.Duration // after t0
		ok         bool
		suppressed int
	}
	tests := []struct {
		name  string
		every time.Duration
		max   int
		steps []step
	}{
		{"disabled: everything passes", 0, 0, []step{
			{"a", 0, true, 0}, {"a", 0, true, 0}, {"a", time.Millisecond, true, 0},
		}},
		{"first passes, repeats within the interval are held back and counted", 10 * time.Second, 0, []step{
			{"a", 0, true, 0},
			{"a", time.Second, false, 0},
			{"a", 9 * time.Second, false, 0},
			{"a", 10 * time.Second, true, 2},
			{"a", 11 * time.Second, false, 0},
			{"a", 25 * time.Second, true, 1},
			{"a", 40 * time.Second, true, 0},
		}},
		{"keys are independent", 10 * time.Second, 0, []step{
			{"a", 0, true, 0},
			{"b", time.Second, true, 0},
			{"a", 2 * time.Second, false, 0},
			{"b", 3 * time.Second, false, 0},
			{"b", 11 * time.Second, true, 1},
		}},
		{"full: old keys are forgotten", 10 * time.Second, 2, []step{
			{"a", 0, true, 0},
			{"b", 0, true, 0},
			{"c", 10 * time.Second, true, 0}, // a and b pruned
			{"a", 11 * time.Second, true, 0},
			{"a", 12 * time.Second, false, 0},
		}},
		{"full of recent keys: new ones are limited by message", 10 * time.Second, 2, []step{
			{"a", 0, true, 0},
			{"b", 0, true, 0},
			{"c", time.Second, true, 0}, // passes as the first of its message
			{"d", 2 * time.Second, false, 0},
			{"e", 3 * time.Second, false, 0},
			{"f", 11 * time.Second, true, 0}, // a, b pruned: f is remembered itself
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &repeats{every: tc.every, max: tc.max}
			for i, s := range tc.steps {
				ok, n := r.allow(s.key, "msg", t0.Add(s.at))
				require.Equal(t, s.ok, ok, "step %d (%s at %s)", i, s.key, s.at)
				require.Equal(t, s.suppressed, n, "step %d (%s at %s)", i, s.key, s.at)
			}
		})
	}
}

func TestRepeatsZeroValue(t *testing.T) {
	t.Parallel()
	var r repeats
	for i := 0; i < 3; i++ {
		ok, n := r.allow("a", "msg", time.Unix(0, 0))
		require.True(t, ok)
		require.Zero(t, n)
	}
}

// TestRepeatsManyKeysOfOneMessage: a burst of the same warning about
// different runs (every trigger request in flight failing while the broker
// elects a leader) logs its first few, then one line for the message with
// a count of the rest.
func TestRepeatsManyKeysOfOneMessage(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	r := &repeats{every: 10 * time.Second}
	passed := 0
	for i := range 1000 {
		if ok, _ := r.allow(fmt.Sprintf("run-%d", i), "trigger request not handled", t0.Add(time.Duration(i)*time.Millisecond)); ok {
			passed++
		}
	}
	require.Equal(t, repeatFirstsMax+1, passed, "the first keys, then the message once")
	ok, _ := r.allow("other", "another warning", t0.Add(time.Second))
	require.True(t, ok, "another message has its own share")

	// The next interval: new keys pass again, and once their share is
	// used the message passes with the count held back.
	later := t0.Add(11 * time.Second)
	for i := range repeatFirstsMax {
		ok, n := r.allow(fmt.Sprintf("later-%d", i), "trigger request not handled", later)
		require.True(t, ok)
		require.Zero(t, n)
	}
	ok, n := r.allow("later-x", "trigger request not handled", later)
	require.True(t, ok)
	require.Equal(t, 1000-repeatFirstsMax-1, n)
}
