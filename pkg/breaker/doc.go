// Package breaker is a circuit breaker with cano's semantics (cano 0.11
// CircuitBreaker) whose state can be shared by every worker process through
// JetStream KV.
//
// # Semantics
//
// A [Breaker] is Closed, Open or HalfOpen ([State]; diagram in
// state_machine.md):
//
//   - Closed admits every call. Policy.FailureThreshold consecutive failures
//     (a success resets the count) trip it Open until now+ResetTimeout.
//   - Open rejects every call with an [*OpenError] wrapping [ErrOpen]. There
//     is no timer: the first [Breaker.Acquire] at or after the deadline turns
//     it HalfOpen and is admitted as a probe.
//   - HalfOpen admits at most Policy.HalfOpenMaxCalls concurrent probes
//     (more are rejected with [ErrHalfOpenExhausted], which wraps [ErrOpen]).
//     HalfOpenMaxCalls probe successes close it; any probe failure re-opens
//     it with a fresh deadline.
//   - Every transition starts a new epoch. A [Permit] remembers the epoch it
//     was issued in, and outcomes reported for an older epoch are ignored, so
//     a slow call that straddled a transition cannot trip or close the new
//     session.
//   - A permit whose outcome is never reported counts as a failure when
//     [Permit.Release] runs: always `defer p.Release()`.
//
// The state machine is a set of pure functions over a [Snapshot] that take
// the time as a parameter; a [Breaker] runs them against a [Store] with an
// injected [Clock].
//
// # Stores
//
// [LocalStore] keeps states in memory (cano's process-local breaker).
// The engine's KV store (used by pkg/worker for breakers shared by every
// worker process) keeps them in the breakers bucket, with compare-and-set
// on the KV revision (which is also the epoch). It keeps a watched local
// copy, so a closed breaker costs no broker round trip per call: only
// failures, transitions, probe admissions and the first success after
// failures write; the copy lags the bucket by the watcher's delivery
// latency, so the consecutive-failure count is approximate across
// processes, while probe admission and transitions are exact.
//
// # Observing and operating
//
// Settings.OnTransitionFunc reports each transition once, in the process
// that made it. pkg/client's Breakers and ResetBreaker let operators see
// and close shared breakers.
package breaker
