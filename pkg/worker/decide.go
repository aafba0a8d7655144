package worker

import (
	"errors"
	"time"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// The decisions of execute, as pure functions: what to do with a command
// before it runs (admit) and with an attempt's outcome (decide). execute
// is the I/O around them: it reads the clock, the cancel marks and the
// contexts, and acts on what these return.

// admission is what to do with a command before an attempt is made.
type admission uint8

const (
	admitRun     admission = iota // make the attempt
	admitSkip                     // acknowledge: cancelled, or past the run's deadline
	admitAbandon                  // past the policy's attempts: report it abandoned (after abandonGrace)
)

// admit decides whether attempt (counted from 1) of cmd is made at now;
// cancelled says a cancel notice covers the command's run or branch.
func admit(cmd *protocol.TaskCommand, attempt, maxAttempts int, cancelled bool, now time.Time) admission {
	switch {
	case cancelled:
		return admitSkip // a queued branch of a decided join, or a cancelled run
	case cmd.Deadline > 0 && now.UnixNano() >= cmd.Deadline:
		return admitSkip // the run has timed out; the coordinator ends it
	case attempt > maxAttempts:
		// Deliveries beyond the policy: the worker of the last attempt
		// died — or lost the lease while the broker was away (a consumer
		// leader moving) and still holds a result it is retrying.
		return admitAbandon
	}
	return admitRun
}

// abandoned is the error reported for a command delivered past its
// policy's attempts (admitAbandon).
func abandoned(maxAttempts int) error {
	return &fsm.RetryExhaustedError{Attempts: uint32(maxAttempts),
		Cause: fsm.NewError(protocol.CategoryTaskExecution, "attempt abandoned: the worker running it stopped")}
}

// attemptErr classifies how the wait for an attempt ended. returned says
// the task returned err; otherwise the attempt's context ended first (the
// task may ignore its context: its late result is discarded). attemptCause
// is the attempt context's cause, runCause the cause of the context that
// cancel notices and the worker's stop end (nil while live).
func attemptErr(cmd *protocol.TaskCommand, returned bool, err, attemptCause, runCause error) error {
	if returned {
		if err != nil && attemptCause == errAttemptTimeout {
			return timeoutError(cmd)
		}
		return err
	}
	if runCause != nil {
		return runCause
	}
	return timeoutError(cmd)
}

// verdict is what becomes of a command once its attempt has ended.
type verdict uint8

const (
	verdictFinish   verdict = iota // report the final outcome (decision.err; nil: success)
	verdictRetry                   // hand the command back after decision.delay for another attempt
	verdictDrop                    // acknowledge: the run or branch was cancelled; nobody waits
	verdictHandBack                // the worker is stopping: hand the command back (stopHandBackDelay)
)

// decision is the pure outcome of decide.
type decision struct {
	verdict verdict
	// err is the error to report (verdictFinish) or the attempt's error
	// (verdictRetry).
	err   error
	delay time.Duration // verdictRetry: the delay before the next attempt
}

// breakerOK is what an attempt's breaker permit (if any) is told: the
// attempt succeeded. Every attempt made reports, a cancelled or handed-back
// one too (a cancel or a stop that ends an attempt counts as a failure).
func breakerOK(out outcome) bool { return out.err == nil }

// decide settles attempt (from 1) of a command run under policy, whose
// task ended with out. cancelled says a cancel notice ended the attempt,
// stopping that the worker is stopping; u in [-1, 1] drives the retry
// delay's jitter (callers pass rand.Float64()*2-1).
func decide(out outcome, attempt, maxAttempts int, policy protocol.RetryPolicy, cancelled, stopping bool, u float64) decision {
	var d decision
	switch {
	case cancelled:
		d.verdict = verdictDrop
		return d
	case stopping:
		// Another worker takes it (once this one's pull requests are drained);
		// bounded, as each hand-back is a delivery the policy counts.
		d.verdict = verdictHandBack
		return d
	}
	if out.err == nil {
		d.verdict = verdictFinish
		return d
	}
	permanent := out.final || errors.Is(out.err, fsm.ErrPermanent)
	if permanent || attempt >= maxAttempts {
		d.verdict, d.err = verdictFinish, out.err
		if maxAttempts > 1 && !permanent {
			d.err = &fsm.RetryExhaustedError{Attempts: uint32(attempt), Cause: out.err}
		}
		return d
	}
	d.verdict, d.err = verdictRetry, out.err
	d.delay = engine.RetryDelay(policy, uint32(attempt-1), u)
	return d
}
