package join_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestStrategies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s        join.Strategy
		name     string
		wantKind protocol.JoinStrategy
		required uint32 // out of 10 branches
		bounded  bool
	}{
		{join.Strategy{}, "all", protocol.JoinAll, 10, true},
		{join.All(), "all", protocol.JoinAll, 10, true},
		{join.Any(), "any", protocol.JoinAny, 1, true},
		{join.Quorum(3), "quorum(3)", protocol.JoinQuorum, 3, true},
		{join.Percentage(0.25), "percentage(0.25)", protocol.JoinPercentage, 3, true},
		{join.PartialResults(2), "partial_results(2)", protocol.JoinPartialResults, 2, true},
		{join.PartialTimeout(), "partial_timeout", protocol.JoinPartialTimeout, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.name, tc.s.String())
			spec := tc.s.Spec()
			require.Equal(t, tc.wantKind, spec.Strategy)
			n, ok := join.Required(spec, 10)
			require.Equal(t, tc.bounded, ok)
			if ok {
				require.Equal(t, tc.required, n)
			}
		})
	}
}

func TestDecisionString(t *testing.T) {
	t.Parallel()
	for d, want := range map[join.Decision]string{join.Pending: "pending", join.Satisfied: "satisfied",
		join.Failed: "failed", join.Decision(9): "Decision(9)"} {
		require.Equal(t, want, d.String())
	}
}

func TestFailureMessage(t *testing.T) {
	t.Parallel()
	errs := []protocol.BranchError{
		{Index: 0, Error: &protocol.ErrorInfo{Message: "e0"}}, {Index: 1, Error: &protocol.ErrorInfo{Message: "e1"}},
		{Index: 2}, {Index: 3, Error: &protocol.ErrorInfo{Message: "e3"}},
	}
	for _, tc := range []struct {
		name     string
		spec     protocol.JoinSpec
		c        join.Counts
		errs     []protocol.BranchError
		timedOut bool
		want     string
	}{
		{"partial timeout", protocol.JoinSpec{Strategy: protocol.JoinPartialTimeout}, join.Counts{Total: 2}, nil, true,
			"partial timeout: no tasks completed before timeout"},
		{"timeout", protocol.JoinSpec{Strategy: protocol.JoinQuorum, N: 2}, join.Counts{Total: 3, Succeeded: 1}, nil, true,
			"split task timeout exceeded: 1 of 3 tasks completed successfully, strategy: quorum(2)"},
		{"partial results", protocol.JoinSpec{Strategy: protocol.JoinPartialResults, N: 2}, join.Counts{Total: 2, Failed: 2}, errs[:2], false,
			"partial results condition not met: 0 completed successfully, 2 required; errors: task 0: e0; task 1: e1"},
		{"many errors", protocol.JoinSpec{Strategy: protocol.JoinAll}, join.Counts{Total: 5, Failed: 5}, errs, false,
			"join condition not met: 0 of 5 tasks completed successfully, strategy: all; errors: task 0: e0; task 1: e1; task 2: ; … and 2 more error(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, join.FailureMessage(tc.spec, tc.c, tc.errs, tc.timedOut))
		})
	}
}
