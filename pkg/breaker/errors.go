package breaker

import (
	"errors"
	"fmt"
	"time"
)

// ErrOpen is returned (wrapped in an [*OpenError]) by [Breaker.Acquire] when
// the breaker rejects a call: it is open and its cool-down has not passed, or
// it is half-open and every trial slot is taken. Its wire category is
// protocol.CategoryCircuitOpen. Test with errors.Is(err, ErrOpen).
var ErrOpen = errors.New("breaker: circuit open: rejecting call")

// ErrHalfOpenExhausted is returned (wrapped in an [*OpenError]) when a
// half-open breaker already has Policy.HalfOpenMaxCalls probes in flight.
// It wraps [ErrOpen], so errors.Is(err, ErrOpen) holds for it too.
var ErrHalfOpenExhausted = fmt.Errorf("%w: half-open: trial slot exhausted", ErrOpen)

// ErrClosed is returned by the shared (KV) store, and the breakers using
// it, after the store was stopped (the worker stopped).
var ErrClosed = errors.New("breaker: store closed")

// ErrNotFound is returned by a reset (pkg/client's ResetBreaker) when no
// breaker of that name exists.
var ErrNotFound = errors.New("breaker: not found")

// ErrInvalidSettings is wrapped by every error [New] returns for bad
// [Settings]; the message names the field.
var ErrInvalidSettings = errors.New("breaker: invalid settings")

// OpenError is the error [Breaker.Acquire] returns when it rejects a call. It
// unwraps to [ErrOpen] or [ErrHalfOpenExhausted].
type OpenError struct {
	// Name is the breaker's name.
	Name string
	// Until is when an open breaker will admit a probe; zero when the
	// breaker is half-open with no free trial slot.
	Until time.Time
	err   error
}

// Error implements error.
func (e *OpenError) Error() string {
	if e.Until.IsZero() {
		return fmt.Sprintf("%v (breaker %q)", e.err, e.Name)
	}
	return fmt.Sprintf("%v (breaker %q, open until %s)", e.err, e.Name, e.Until.UTC().Format(time.RFC3339Nano))
}

// Unwrap returns [ErrOpen] or [ErrHalfOpenExhausted].
func (e *OpenError) Unwrap() error { return e.err }
