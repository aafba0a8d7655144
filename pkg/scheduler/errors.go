package scheduler

import (
	"errors"

	"github.com/cano-nats/cano/internal/startstop"
)

// Sentinel errors. Compare with [errors.Is].
var (
	// ErrInvalidFlow: a flow is malformed (bad id, workflow, cron expression,
	// time zone, interval or backoff). The error text names the field.
	ErrInvalidFlow = errors.New("scheduler: invalid flow")
	// ErrFlowExists: Add of an id that is already stored.
	ErrFlowExists = errors.New("scheduler: flow already exists")
	// ErrFlowNotFound: the flow id is not stored.
	ErrFlowNotFound = errors.New("scheduler: flow not found")
	// ErrFlowRunning: Trigger of a flow whose previous run is still running.
	ErrFlowRunning = errors.New("scheduler: flow is already running")
	// ErrFlowTripped: Trigger of a tripped flow; Reset it first.
	ErrFlowTripped = errors.New("scheduler: flow is tripped")
	// ErrConflict: the flow changed concurrently too many times in a row.
	ErrConflict = errors.New("scheduler: concurrent update conflict")
	// ErrAlreadyStarted: a second Start (also after Stop or a failed
	// Start); a scheduler starts once. The same value as
	// coordinator.ErrAlreadyStarted and worker.ErrAlreadyStarted.
	ErrAlreadyStarted = startstop.ErrAlreadyStarted
	// ErrDrainTimeout: Stop gave up waiting for running flows to finish.
	ErrDrainTimeout = errors.New("scheduler: timeout waiting for running flows to finish")
)
