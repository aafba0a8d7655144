package joinrule_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/joinrule"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

func spec(s protocol.JoinStrategy, n uint32, p float64) protocol.JoinSpec {
	return protocol.JoinSpec{Strategy: s, N: n, P: p, JoinState: "join", Timeout: 1}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	all := spec(protocol.JoinAll, 0, 0)
	anyS := spec(protocol.JoinAny, 0, 0)
	q2 := spec(protocol.JoinQuorum, 2, 0)
	pct := spec(protocol.JoinPercentage, 0, 0.5)
	pr2 := spec(protocol.JoinPartialResults, 2, 0)
	pr0 := spec(protocol.JoinPartialResults, 0, 0)
	pt := spec(protocol.JoinPartialTimeout, 0, 0)
	c := func(total, ok, bad uint32) joinrule.Counts {
		return joinrule.Counts{Total: total, Succeeded: ok, Failed: bad}
	}

	tests := []struct {
		name string
		spec protocol.JoinSpec
		c    joinrule.Counts
		want joinrule.Decision
	}{
		// All
		{"all/all succeed", all, c(4, 4, 0), joinrule.Satisfied},
		{"all/partial progress", all, c(4, 3, 0), joinrule.Pending},
		{"all/some fail: fails at the first failure", all, c(4, 1, 1), joinrule.Failed},
		{"all/all fail", all, c(4, 0, 4), joinrule.Failed},
		{"all/zero branches", all, c(0, 0, 0), joinrule.Satisfied},
		// Any
		{"any/all succeed", anyS, c(4, 4, 0), joinrule.Satisfied},
		{"any/threshold early", anyS, c(4, 1, 0), joinrule.Satisfied},
		{"any/some fail, none yet", anyS, c(4, 0, 3), joinrule.Pending},
		{"any/all fail", anyS, c(4, 0, 4), joinrule.Failed},
		{"any/zero branches", anyS, c(0, 0, 0), joinrule.Failed},
		// Quorum(2)
		{"quorum/all succeed", q2, c(4, 4, 0), joinrule.Satisfied},
		{"quorum/threshold early", q2, c(4, 2, 0), joinrule.Satisfied},
		{"quorum/some fail still possible", q2, c(4, 1, 2), joinrule.Pending},
		{"quorum/impossible early", q2, c(4, 0, 3), joinrule.Failed},
		{"quorum/all fail", q2, c(4, 0, 4), joinrule.Failed},
		{"quorum/zero branches", q2, c(0, 0, 0), joinrule.Failed},
		{"quorum(0)/zero branches", spec(protocol.JoinQuorum, 0, 0), c(0, 0, 0), joinrule.Satisfied},
		// Percentage(0.5) of 4 → 2
		{"percentage/all succeed", pct, c(4, 4, 0), joinrule.Satisfied},
		{"percentage/threshold early", pct, c(4, 2, 0), joinrule.Satisfied},
		{"percentage/impossible early", pct, c(4, 1, 3), joinrule.Failed},
		{"percentage/pending", pct, c(4, 1, 1), joinrule.Pending},
		{"percentage/all fail", pct, c(4, 0, 4), joinrule.Failed},
		{"percentage/zero branches", pct, c(0, 0, 0), joinrule.Satisfied},
		{"percentage 0.66 of 3 needs 2", spec(protocol.JoinPercentage, 0, 0.66), c(3, 2, 0), joinrule.Satisfied},
		{"percentage 0.66 of 3 with 1", spec(protocol.JoinPercentage, 0, 0.66), c(3, 1, 0), joinrule.Pending},
		// PartialResults(2)
		{"partial results/all succeed", pr2, c(4, 4, 0), joinrule.Satisfied},
		{"partial results/threshold early", pr2, c(4, 2, 0), joinrule.Satisfied},
		{"partial results/failures don't count", pr2, c(4, 1, 2), joinrule.Pending},
		{"partial results/impossible early", pr2, c(4, 0, 3), joinrule.Failed},
		{"partial results/all fail", pr2, c(4, 0, 4), joinrule.Failed},
		{"partial results/zero branches", pr2, c(0, 0, 0), joinrule.Failed},
		{"partial results(0)/first completion of any kind", pr0, c(4, 0, 1), joinrule.Satisfied},
		{"partial results(0)/nothing yet", pr0, c(4, 0, 0), joinrule.Pending},
		// PartialTimeout
		{"partial timeout/all succeed before deadline", pt, c(4, 4, 0), joinrule.Satisfied},
		{"partial timeout/some done waits", pt, c(4, 2, 1), joinrule.Pending},
		{"partial timeout/all fail still proceeds", pt, c(4, 0, 4), joinrule.Satisfied},
		{"partial timeout/zero branches", pt, c(0, 0, 0), joinrule.Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, joinrule.Decide(tc.spec, tc.c))
		})
	}
}

func TestDecideTimeout(t *testing.T) {
	t.Parallel()
	c := func(total, ok, bad uint32) joinrule.Counts {
		return joinrule.Counts{Total: total, Succeeded: ok, Failed: bad}
	}
	tests := []struct {
		name string
		spec protocol.JoinSpec
		c    joinrule.Counts
		want joinrule.Decision
	}{
		{"all/timeout before threshold", spec(protocol.JoinAll, 0, 0), c(4, 3, 0), joinrule.Failed},
		{"any/timeout before threshold", spec(protocol.JoinAny, 0, 0), c(4, 0, 1), joinrule.Failed},
		{"quorum/timeout before threshold", spec(protocol.JoinQuorum, 2, 0), c(4, 1, 0), joinrule.Failed},
		{"quorum/timeout after threshold (raced)", spec(protocol.JoinQuorum, 2, 0), c(4, 2, 0), joinrule.Satisfied},
		{"percentage/timeout before threshold", spec(protocol.JoinPercentage, 0, 0.5), c(4, 1, 0), joinrule.Failed},
		{"partial results/timeout after threshold (raced)", spec(protocol.JoinPartialResults, 2, 0), c(4, 3, 0), joinrule.Satisfied},
		{"partial timeout/one completed", spec(protocol.JoinPartialTimeout, 0, 0), c(4, 0, 1), joinrule.Satisfied},
		{"partial timeout/nothing completed", spec(protocol.JoinPartialTimeout, 0, 0), c(4, 0, 0), joinrule.Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, joinrule.DecideTimeout(tc.spec, tc.c))
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		spec     protocol.JoinSpec
		branches int
		static   bool
		ok       bool
	}{
		{"all ok", spec(protocol.JoinAll, 0, 0), 3, true, true},
		{"percentage 0", spec(protocol.JoinPercentage, 0, 0), 3, true, false},
		{"percentage 1.5", spec(protocol.JoinPercentage, 0, 1.5), 3, true, false},
		{"percentage 1", spec(protocol.JoinPercentage, 0, 1), 3, true, true},
		{"partial timeout without timeout", protocol.JoinSpec{Strategy: protocol.JoinPartialTimeout, JoinState: "j"}, 3, true, false},
		{"quorum above branches static", spec(protocol.JoinQuorum, 4, 0), 3, true, false},
		{"quorum above branches dynamic", spec(protocol.JoinQuorum, 4, 0), 3, false, true},
		{"partial results above branches", spec(protocol.JoinPartialResults, 5, 0), 3, true, false},
		{"unknown strategy", protocol.JoinSpec{Strategy: "most", JoinState: "j"}, 3, true, false},
		{"no join state", protocol.JoinSpec{Strategy: protocol.JoinAll}, 3, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := joinrule.Validate(tc.spec, tc.branches, tc.static)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.True(t, errors.Is(err, join.ErrInvalid), "%v", err)
			}
		})
	}
}

func TestFailureMessageListsFirstThreeErrors(t *testing.T) {
	t.Parallel()
	errs := []protocol.BranchError{
		{Index: 0, Error: &protocol.ErrorInfo{Message: "a"}},
		{Index: 2, Error: &protocol.ErrorInfo{Message: "b"}},
		{Index: 5, Error: &protocol.ErrorInfo{Message: "c"}},
	}
	msg := joinrule.FailureMessage(spec(protocol.JoinQuorum, 3, 0), joinrule.Counts{Total: 6, Succeeded: 1, Failed: 5}, errs, false)
	require.Equal(t, "join condition not met: 1 of 6 tasks completed successfully, strategy: quorum(3); "+
		"errors: task 0: a; task 2: b; task 5: c; … and 2 more error(s)", msg)
}

func TestDecisionString(t *testing.T) {
	t.Parallel()
	for d, want := range map[joinrule.Decision]string{joinrule.Pending: "pending", joinrule.Satisfied: "satisfied",
		joinrule.Failed: "failed", joinrule.Decision(9): "Decision(9)"} {
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
		c        joinrule.Counts
		errs     []protocol.BranchError
		timedOut bool
		want     string
	}{
		{"partial timeout", protocol.JoinSpec{Strategy: protocol.JoinPartialTimeout}, joinrule.Counts{Total: 2}, nil, true,
			"partial timeout: no tasks completed before timeout"},
		{"timeout", protocol.JoinSpec{Strategy: protocol.JoinQuorum, N: 2}, joinrule.Counts{Total: 3, Succeeded: 1}, nil, true,
			"split task timeout exceeded: 1 of 3 tasks completed successfully, strategy: quorum(2)"},
		{"partial results", protocol.JoinSpec{Strategy: protocol.JoinPartialResults, N: 2}, joinrule.Counts{Total: 2, Failed: 2}, errs[:2], false,
			"partial results condition not met: 0 completed successfully, 2 required; errors: task 0: e0; task 1: e1"},
		{"many errors", protocol.JoinSpec{Strategy: protocol.JoinAll}, joinrule.Counts{Total: 5, Failed: 5}, errs, false,
			"join condition not met: 0 of 5 tasks completed successfully, strategy: all; errors: task 0: e0; task 1: e1; task 2: ; … and 2 more error(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, joinrule.FailureMessage(tc.spec, tc.c, tc.errs, tc.timedOut))
		})
	}
}
