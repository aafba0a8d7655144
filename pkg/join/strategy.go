package join

import (
	"github.com/cano-nats/cano/internal/joinrule"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Strategy is a join strategy with its parameter. Build one with [All],
// [Any], [Quorum], [Percentage], [PartialResults] or [PartialTimeout]. The
// zero value is All.
type Strategy struct {
	kind protocol.JoinStrategy
	n    uint32
	p    float64
}

// All succeeds when every branch succeeded and fails at the first failure.
func All() Strategy { return Strategy{kind: protocol.JoinAll} }

// Any succeeds at the first successful branch.
func Any() Strategy { return Strategy{kind: protocol.JoinAny} }

// Quorum succeeds once n branches succeeded.
func Quorum(n uint32) Strategy { return Strategy{kind: protocol.JoinQuorum, n: n} }

// Percentage succeeds once ceil(N·p) branches succeeded; p must be in (0,1].
func Percentage(p float64) Strategy { return Strategy{kind: protocol.JoinPercentage, p: p} }

// PartialResults succeeds once n branches succeeded and cancels the rest;
// PartialResults(0) proceeds at the first outcome of any kind.
func PartialResults(n uint32) Strategy { return Strategy{kind: protocol.JoinPartialResults, n: n} }

// PartialTimeout waits for every branch or the join timeout (required) and
// proceeds if at least one branch completed, successfully or not.
func PartialTimeout() Strategy { return Strategy{kind: protocol.JoinPartialTimeout} }

// Spec fills the strategy part of a wire join spec.
func (s Strategy) Spec() protocol.JoinSpec {
	k := s.kind
	if k == "" {
		k = protocol.JoinAll
	}
	return protocol.JoinSpec{Strategy: k, N: s.n, P: s.p}
}

// String names the strategy: "all", "quorum(2)", "percentage(0.5)".
func (s Strategy) String() string { return joinrule.Describe(s.Spec()) }
