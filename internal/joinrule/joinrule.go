// Package joinrule decides split joins: given a join configuration and the
// counts of branch outcomes so far, is the join still pending, satisfied, or
// impossible? Evaluation is pure and O(1) per arriving result. The engine
// (internal/engine) calls it; users pick a strategy with package join,
// whose documentation has the table of what each strategy decides.
package joinrule

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/cano-nats/cano/pkg/protocol"
)

// Decision is the outcome of evaluating a join.
type Decision uint8

// Decisions.
const (
	Pending Decision = iota
	Satisfied
	Failed
)

// String names the decision, for logs.
func (d Decision) String() string {
	switch d {
	case Pending:
		return "pending"
	case Satisfied:
		return "satisfied"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Decision(%d)", uint8(d))
}

// Counts are the branch outcomes of a split so far.
type Counts struct {
	Total     uint32
	Succeeded uint32
	Failed    uint32
}

// Done is the number of branches with an outcome.
func (c Counts) Done() uint32 { return c.Succeeded + c.Failed }

// Remaining is the number of branches without an outcome.
func (c Counts) Remaining() uint32 { return c.Total - c.Done() }

// Required returns how many successes the strategy needs out of total, and
// whether the strategy is threshold-based at all (PartialTimeout is not).
func Required(spec protocol.JoinSpec, total uint32) (uint32, bool) {
	switch spec.Strategy {
	case protocol.JoinAll:
		return total, true
	case protocol.JoinAny:
		return 1, true
	case protocol.JoinQuorum, protocol.JoinPartialResults:
		return spec.N, true
	case protocol.JoinPercentage:
		need := math.Ceil(float64(total)*spec.P - 1e-9)
		if need < 0 {
			need = 0
		}
		return uint32(need), true
	}
	return 0, false
}

// Decide evaluates the join after an outcome arrived.
func Decide(spec protocol.JoinSpec, c Counts) Decision {
	switch spec.Strategy {
	case protocol.JoinAll:
		if c.Failed > 0 {
			return Failed
		}
		if c.Succeeded == c.Total {
			return Satisfied
		}
		return Pending
	case protocol.JoinPartialTimeout:
		if c.Remaining() > 0 {
			return Pending
		}
		if c.Done() >= 1 {
			return Satisfied
		}
		return Failed
	case protocol.JoinPartialResults:
		if spec.N == 0 && c.Total > 0 {
			if c.Done() >= 1 {
				return Satisfied
			}
			return Pending
		}
	}
	need, _ := Required(spec, c.Total)
	if c.Succeeded >= need {
		return Satisfied
	}
	if c.Succeeded+c.Remaining() < need {
		return Failed
	}
	return Pending
}

// DecideTimeout evaluates the join when its timeout fires. Only
// PartialTimeout can proceed: with at least one completed branch.
func DecideTimeout(spec protocol.JoinSpec, c Counts) Decision {
	if spec.Strategy == protocol.JoinPartialTimeout && c.Done() >= 1 {
		return Satisfied
	}
	if d := Decide(spec, c); d == Satisfied {
		return Satisfied // decided before the deadline; the timer raced it
	}
	return Failed
}

// Sentinel errors.
var (
	// ErrInvalid: a join configuration breaks a rule.
	ErrInvalid = errors.New("join: invalid configuration")
)

// Validate checks a join configuration with cano's rules: Percentage in
// (0,1], PartialTimeout needs a timeout, bulkhead ≥ 1 when set (the wire's
// 0 means none). For a static split (branches known, static true) Quorum and
// PartialResults may not ask for more branches than there are.
func Validate(spec protocol.JoinSpec, branches int, static bool) error {
	switch spec.Strategy {
	case protocol.JoinAll, protocol.JoinAny:
	case protocol.JoinQuorum, protocol.JoinPartialResults:
		if static && int(spec.N) > branches {
			return fmt.Errorf("%w: %s(%d) needs more branches than the %d registered", ErrInvalid, spec.Strategy, spec.N, branches)
		}
	case protocol.JoinPercentage:
		if !(spec.P > 0 && spec.P <= 1) || math.IsNaN(spec.P) {
			return fmt.Errorf("%w: percentage %v outside (0,1]", ErrInvalid, spec.P)
		}
	case protocol.JoinPartialTimeout:
		if spec.Timeout <= 0 {
			return fmt.Errorf("%w: partial_timeout requires a timeout", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: unknown strategy %q", ErrInvalid, spec.Strategy)
	}
	if spec.Timeout < 0 {
		return fmt.Errorf("%w: negative timeout", ErrInvalid)
	}
	if spec.JoinState == "" {
		return fmt.Errorf("%w: join state missing", ErrInvalid)
	}
	return nil
}

// Describe names a strategy for messages: "all", "quorum(2)", "percentage(0.5)".
func Describe(spec protocol.JoinSpec) string {
	switch spec.Strategy {
	case protocol.JoinQuorum, protocol.JoinPartialResults:
		return fmt.Sprintf("%s(%d)", spec.Strategy, spec.N)
	case protocol.JoinPercentage:
		return fmt.Sprintf("%s(%g)", spec.Strategy, spec.P)
	}
	return string(spec.Strategy)
}

// FailureMessage is the message of a failed join, as cano words it: the
// strategy, the counts, and the first three branch errors.
func FailureMessage(spec protocol.JoinSpec, c Counts, errs []protocol.BranchError, timedOut bool) string {
	var b strings.Builder
	switch {
	case timedOut && spec.Strategy == protocol.JoinPartialTimeout:
		b.WriteString("partial timeout: no tasks completed before timeout")
	case timedOut:
		fmt.Fprintf(&b, "split task timeout exceeded: %d of %d tasks completed successfully, strategy: %s",
			c.Succeeded, c.Total, Describe(spec))
	case spec.Strategy == protocol.JoinPartialResults:
		fmt.Fprintf(&b, "partial results condition not met: %d completed successfully, %d required", c.Succeeded, spec.N)
	default:
		fmt.Fprintf(&b, "join condition not met: %d of %d tasks completed successfully, strategy: %s",
			c.Succeeded, c.Total, Describe(spec))
	}
	if len(errs) > 0 {
		b.WriteString("; errors: ")
		for i, e := range errs {
			if i == 3 {
				break
			}
			if i > 0 {
				b.WriteString("; ")
			}
			msg := ""
			if e.Error != nil {
				msg = e.Error.Message
			}
			fmt.Fprintf(&b, "task %d: %s", e.Index, msg)
		}
		if int(c.Failed) > 3 {
			fmt.Fprintf(&b, "; … and %d more error(s)", int(c.Failed)-3)
		}
	}
	return b.String()
}
