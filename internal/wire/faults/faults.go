package faults

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/worker"
)

// Workflow and breaker names of the fault demos (retries across worker
// crashes, a circuit breaker shared by every worker process).
const (
	FlakyName   = "faults_flaky"
	GuardedName = "faults_breaker"
	// GuardedBreaker is the breaker GuardedCall is protected by.
	GuardedBreaker = "faults_dependency"
)

// Fault demo policies.
const (
	// FlakyRetryDelay is the fixed delay between FlakyCall attempts.
	FlakyRetryDelay = 50 * time.Millisecond
	// FlakyRetries is FlakyCall's retry count: FlakyRetries+1 attempts.
	FlakyRetries = 2
	// GuardedFailureThreshold and GuardedResetTimeout are the breaker
	// policy of GuardedCall (one probe at a time).
	GuardedFailureThreshold = 3
	GuardedResetTimeout     = 5 * time.Second
)

// Store keys (in the run's scope) the fault tasks use.
const (
	// AttemptsKey holds the []AttemptRecord of every attempt that ran.
	AttemptsKey = "attempts"
	// ReleaseKey, once written, lets a held GuardedCall finish.
	ReleaseKey = "release"
)

// FaultInput is the run input of the fault demos; it steers the tasks.
type FaultInput struct {
	// FailUntil: attempts before this one fail (FlakyCall).
	FailUntil int `msgpack:"fail_until" json:"fail_until"`
	// HangAttempt: this attempt blocks until its context ends (FlakyCall).
	HangAttempt int `msgpack:"hang_attempt" json:"hang_attempt"`
	// Fail makes the call fail (GuardedCall).
	Fail bool `msgpack:"fail" json:"fail"`
	// Hold makes the call wait until ReleaseKey is written in the run's
	// store (GuardedCall).
	Hold bool `msgpack:"hold" json:"hold"`
}

// AttemptRecord is what a fault task appends to AttemptsKey when an attempt
// starts.
type AttemptRecord struct {
	Attempt int    `msgpack:"attempt"`
	Host    string `msgpack:"host"`
	PID     int    `msgpack:"pid"`
	// At is the attempt's start, unix nanoseconds.
	At int64 `msgpack:"at"`
}

// ErrDependency is the failure the fault tasks simulate.
var ErrDependency = errors.New("faults: dependency unavailable")

func recordAttempt(ctx context.Context, tc *fsm.TaskContext) error {
	if tc.Store == nil {
		return nil
	}
	host, _ := os.Hostname()
	return kvstore.AppendValue(ctx, tc.Store, AttemptsKey, AttemptRecord{Attempt: tc.Attempt, Host: host,
		PID: os.Getpid(), At: time.Now().UnixNano()})
}

// FlakyCall records each attempt, fails attempts before input.FailUntil,
// hangs on input.HangAttempt until its context ends, and otherwise moves to
// Next.
type FlakyCall struct {
	Next string `msgpack:"next"`
}

// Kind implements fsm.Task.
func (FlakyCall) Kind() string { return "flaky_call" }

// Run implements fsm.Task.
func (f FlakyCall) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var in FaultInput
	if err := tc.Input(&in); err != nil {
		return fsm.Result{}, err
	}
	if err := recordAttempt(ctx, tc); err != nil {
		return fsm.Result{}, err
	}
	if tc.Attempt == in.HangAttempt {
		<-ctx.Done()
		return fsm.Result{}, ctx.Err()
	}
	if tc.Attempt < in.FailUntil {
		return fsm.Result{}, fmt.Errorf("attempt %d: %w", tc.Attempt, ErrDependency)
	}
	return fsm.NextWith(f.Next, tc.Attempt), nil
}

// GuardedCall is a call to a dependency behind the shared breaker
// GuardedBreaker: it records the call, waits for ReleaseKey if input.Hold,
// then fails if input.Fail or moves to Next.
type GuardedCall struct {
	Next string `msgpack:"next"`
}

// Kind implements fsm.Task.
func (GuardedCall) Kind() string { return "guarded_call" }

// Run implements fsm.Task.
func (g GuardedCall) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var in FaultInput
	if err := tc.Input(&in); err != nil {
		return fsm.Result{}, err
	}
	if err := recordAttempt(ctx, tc); err != nil {
		return fsm.Result{}, err
	}
	if in.Hold && tc.Store != nil {
		if err := waitKey(ctx, tc.Store, ReleaseKey); err != nil {
			return fsm.Result{}, err
		}
	}
	if in.Fail {
		return fsm.Result{}, ErrDependency
	}
	return fsm.Next(g.Next), nil
}

// waitKey returns once key exists in s, or ctx's error. It polls: the
// store's Watch ends early on the KV store today (its watcher is bound to a
// start-up timeout), and a demo can afford a 20 ms tick.
func waitKey(ctx context.Context, s kvstore.Store, key string) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		_, err := s.Get(ctx, key)
		if err == nil {
			return nil
		}
		if !errors.Is(err, kvstore.ErrNotFound) {
			return err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Flaky is a one-task workflow whose task (FlakyCall) retries with a fixed
// FlakyRetryDelay, FlakyRetries+1 attempts.
func Flaky() *fsm.Workflow[string] {
	return fsm.New[string](FlakyName, "call").
		Register("call", FlakyCall{Next: "done"}, fsm.TaskConfig{Retry: fsm.RetryFixed(FlakyRetries, FlakyRetryDelay)}).
		Exit("done")
}

// Guarded is cano's circuit_breaker example as a workflow: one call, no
// retries, behind the shared breaker GuardedBreaker.
func Guarded() *fsm.Workflow[string] {
	return fsm.New[string](GuardedName, "call").
		Register("call", GuardedCall{Next: "done"}, fsm.TaskConfig{Retry: fsm.RetryNone(), Breaker: GuardedBreaker,
			BreakerPolicy: &breaker.Policy{FailureThreshold: GuardedFailureThreshold,
				ResetTimeout: GuardedResetTimeout, HalfOpenMaxCalls: 1}}).
		Exit("done")
}

// Install adds the fault kinds to reg and returns their workflows: the
// shape of app's Extra hook, for tests that run the demo worker in process.
func Install(reg *fsm.Registry) []worker.Definer {
	RegisterFaults(reg)
	return []worker.Definer{Flaky(), Guarded()}
}

// RegisterFaults adds the fault demo kinds to reg.
func RegisterFaults(reg *fsm.Registry) {
	fsm.Register[FlakyCall](reg)
	fsm.Register[GuardedCall](reg)
}
