// Package join chooses how a split's branches are joined: a [Strategy]
// says when the join state runs (the threshold is met) and when the split
// fails (the threshold can no longer be met). The engine evaluates it,
// purely and in O(1) per arriving result.
//
// Cano for Go improves on cano: a join succeeds the moment its threshold is
// met and fails the moment the threshold can no longer be met, instead of
// waiting for every branch (Quorum, Percentage) or for the timeout.
//
// For N branches:
//
//   - All succeeds when every branch succeeded (N=0 too); fails when any
//     branch failed.
//   - Any succeeds when one branch succeeded; fails when every branch failed
//     (N=0 too).
//   - Quorum(n) succeeds when n succeeded (n=0: at once); fails when n can no
//     longer be reached.
//   - Percentage(p) succeeds when ceil(N·p) succeeded; fails when ceil(N·p)
//     can no longer be reached.
//   - PartialResults(n) succeeds when n succeeded (n=0: at the first
//     outcome); fails when n can no longer be reached.
//   - PartialTimeout succeeds when every branch is done, or at the deadline,
//     with at least one branch completed (success or failure); fails when
//     none completed.
//
// At the join timeout every strategy but PartialTimeout fails (a threshold
// met earlier has already succeeded).
package join

import "github.com/cano-nats/cano/internal/joinrule"

// ErrInvalid: a join configuration breaks a rule (a percentage outside
// (0,1], PartialTimeout without a timeout, a quorum above the branch
// count). Workflow validation errors wrap it.
var ErrInvalid = joinrule.ErrInvalid
