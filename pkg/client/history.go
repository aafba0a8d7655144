package client

import (
	"time"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/pkg/protocol"
)

// StepKind says what a history step ran: "task", "join" (a task state
// entered by a join decision), "split" or "exit".
type StepKind string

// StepOutcome says how a history step ended: "ok", "split" (the task
// returned a dynamic split, the next step), "failed" or "cancelled"; empty
// while the run is in the step.
type StepOutcome string

// Step is one entry of a run's history: a state entered, how long the run
// stayed, what ran there and how it ended. It is written by the coordinator
// from the final result of each task (after the worker's retries) and from
// join decisions, so only a step's final attempt is described; earlier
// attempts' errors were published as retry events.
type Step struct {
	// Seq is the run's step number while it was in this step.
	Seq   int
	State string
	Kind  StepKind
	// Entered and Left are the coordinator's clock; Left is zero while the
	// run is in the step.
	Entered, Left time.Time
	Outcome       StepOutcome
	// Attempts the step's task used (deliveries of its command: an attempt
	// cut short by a worker crash counts). 0 for split and exit steps.
	Attempts int
	// Worker made the final attempt, which started at AttemptStarted (the
	// worker's clock) and ran for AttemptDuration; both zero when no
	// attempt ran (an open breaker, say).
	Worker          string
	AttemptStarted  time.Time
	AttemptDuration time.Duration
	// Err is why the step failed (category and message; it matches fsm's
	// sentinels with errors.Is), nil otherwise.
	Err error
	// Split describes a split step's branches and its join decision; nil
	// for other steps.
	Split *SplitSummary
}

// SplitSummary is a split step's branches and its join's decision.
type SplitSummary struct {
	// Strategy is the join strategy ("all", "any", "quorum", ...) and
	// Required the successes it needs, when it counts them.
	Strategy string `json:"strategy"`
	Required int    `json:"required,omitempty"`
	// Dynamic says the branches were returned by a task at run time.
	Dynamic bool `json:"dynamic,omitempty"`
	// Branch counts: once decided, the four outcomes add up to Total.
	// They are counted at the join's decision: Cancelled are the branches
	// it did not wait for, some of which may have finished after it (the
	// join state's fsm.TaskContext.Branches reports what was recorded by
	// the time it runs).
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	TimedOut  int `json:"timed_out"`
	Cancelled int `json:"cancelled"`
	// Decision is what the join decided ("" while undecided), JoinTimeout
	// whether its timeout decided it.
	Decision    string `json:"decision,omitempty"`
	JoinTimeout bool   `json:"join_timeout,omitempty"`
}

// Totals count a whole run, including the steps History no longer holds.
type Totals struct {
	// Steps taken, and Dropped of them no longer in History.
	Steps, Dropped int
	// Attempts made by every task (split branches included), FailedAttempts
	// of them failed, and FailedTasks whose final attempt failed. They count
	// the attempts whose outcome the run recorded: a branch its join
	// cancelled before it ended (Quorum met, say) leaves its earlier failed
	// attempts out.
	Attempts, FailedAttempts, FailedTasks int
}

func stepsOf(in []protocol.Step) []Step {
	if len(in) == 0 {
		return nil
	}
	out := make([]Step, len(in))
	for i := range in {
		s := &in[i]
		out[i] = Step{Seq: int(s.Seq), State: s.State, Kind: StepKind(s.Kind), Entered: timeOf(s.Entered),
			Left: timeOf(s.Left), Outcome: StepOutcome(s.Outcome), Attempts: int(s.Attempts), Worker: s.Worker,
			AttemptStarted: timeOf(s.AttemptStarted), AttemptDuration: time.Duration(s.AttemptDuration),
			Err: fsmbridge.FromErrorInfo(s.Error)}
		if sp := s.Split; sp != nil {
			out[i].Split = &SplitSummary{Strategy: string(sp.Strategy), Required: int(sp.Required), Dynamic: sp.Dynamic,
				Total: int(sp.Total), Succeeded: int(sp.Succeeded), Failed: int(sp.Failed), TimedOut: int(sp.TimedOut),
				Cancelled: int(sp.Cancelled), Decision: sp.Decision, JoinTimeout: sp.JoinTimeout}
		}
	}
	return out
}
