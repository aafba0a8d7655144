// Package client is the Go API of a Cano deployment: it triggers runs,
// awaits, reads and cancels them, and reads everything an operator tool
// (canoctl, exporters, a dashboard) needs — live and captured events
// ([Client.Events]), dead letters ([Client.DeadLetters], [Client.Replay]),
// registered workflows ([Client.Workflows], [Client.Workflow]), live
// workers ([Client.Workers]) and shared circuit breakers
// ([Client.Breakers], [Client.ResetBreaker]). Flows (schedules) have their
// own client in package scheduler.
//
// # Types
//
// The client returns its own types — [Run], [Event], [WorkerInfo],
// [BreakerInfo], [DeadLetter], [WorkflowInfo] — with times as time.Time
// (the zero time.Time when not set), intervals as time.Duration, errors as
// Go errors and values decoded on demand ([Run.Input], [Run.Output]).
// Package protocol holds the wire structs behind them; it is the contract
// for clients written in other languages, and Go programs need not import
// it.
//
// # Triggering runs
//
// [Client.Trigger] sends the trigger as a request to the coordinators and
// returns once the run is durable (its record written), with the run id or
// the coordinator's refusal. It sends again, with the same run id, when no
// answer comes within a couple of seconds or the answer says to (a
// coordinator at its bound of requests in flight), and publishes to the
// triggers stream when no coordinator is running. [TriggerOpts].NoWait
// publishes to the triggers stream and returns once the broker stored it.
// [TriggerOpts].StartAt creates the run at once, [RunScheduled], to start
// at that time. [Client.Rerun] starts a new run like an ended one.
//
// # Awaiting runs
//
// [Client.Await] is woken by the run's terminal event (a core NATS
// subscription on the events subjects), not by polling: it subscribes
// first, then reads the run record once, so a run that ended before the
// call is seen too.
//
// # Errors
//
// Run failures come back as typed errors: every one matches one of fsm's
// category sentinels (fsm.ErrWorkflow, fsm.ErrRetryExhausted,
// fsm.ErrCancelled, …) with errors.Is, and carries its state context as an
// *fsm.StateError (state, attempt, path). Lookups of something that does not
// exist match this package's not-found sentinels (ErrNotFound,
// ErrWorkflowNotFound, ErrWorkerNotFound, ErrDeadLetterNotFound,
// ErrBreakerNotFound).
package client
