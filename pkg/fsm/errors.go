package fsm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Category sentinels: cano's error categories. Every run failure a client
// sees matches exactly one of them with [errors.Is], and the category and
// message survive the trip over the wire.
var (
	ErrTaskExecution   = errors.New("fsm: task execution")
	ErrWorkflow        = engine.ErrWorkflow
	ErrConfiguration   = engine.ErrConfiguration
	ErrRetryExhausted  = errors.New("fsm: retry exhausted")
	ErrTimeout         = errors.New("fsm: timeout")
	ErrWorkflowTimeout = errors.New("fsm: workflow timeout")
	ErrCancelled       = errors.New("fsm: cancelled")
	ErrCircuitOpen     = errors.New("fsm: circuit open")
	ErrStore           = errors.New("fsm: store")
	// ErrPermanent marks a task error that is not retried (see [Permanent]).
	ErrPermanent = errors.New("fsm: permanent")
)

var categorySentinel = map[protocol.ErrorCategory]error{
	protocol.CategoryTaskExecution:   ErrTaskExecution,
	protocol.CategoryWorkflow:        ErrWorkflow,
	protocol.CategoryConfiguration:   ErrConfiguration,
	protocol.CategoryRetryExhausted:  ErrRetryExhausted,
	protocol.CategoryTimeout:         ErrTimeout,
	protocol.CategoryWorkflowTimeout: ErrWorkflowTimeout,
	protocol.CategoryCancelled:       ErrCancelled,
	protocol.CategoryCircuitOpen:     ErrCircuitOpen,
	protocol.CategoryStore:           ErrStore,
	protocol.CategoryPermanent:       ErrPermanent,
}

// Error is an error with a cano category. It matches its category's
// sentinel with errors.Is and unwraps to its cause.
type Error struct {
	Category protocol.ErrorCategory
	Message  string
	Cause    error
}

// Error is the category and the message (the cause's when there is none).
func (e *Error) Error() string {
	if e.Message == "" && e.Cause != nil {
		return string(e.Category) + ": " + e.Cause.Error()
	}
	return string(e.Category) + ": " + e.Message
}

// Is matches the category sentinel.
func (e *Error) Is(target error) bool { return categorySentinel[e.Category] == target }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// NewError returns an error of category with a message.
func NewError(category protocol.ErrorCategory, format string, args ...any) *Error {
	return &Error{Category: category, Message: fmt.Sprintf(format, args...)}
}

// RetryExhaustedError reports that every attempt of a task failed.
type RetryExhaustedError struct {
	Attempts uint32
	Cause    error
}

// Error gives the attempts made and the last cause.
func (e *RetryExhaustedError) Error() string {
	if e.Cause == nil {
		return fmt.Sprintf("retry_exhausted: task failed after %d attempt(s)", e.Attempts)
	}
	return fmt.Sprintf("retry_exhausted: task failed after %d attempt(s): %v", e.Attempts, e.Cause)
}

// Is matches [ErrRetryExhausted].
func (e *RetryExhaustedError) Is(target error) bool { return target == ErrRetryExhausted }

// Unwrap returns the last attempt's error.
func (e *RetryExhaustedError) Unwrap() error { return e.Cause }

// StateError is cano's WithStateContext: a run failure with the state it
// happened in, the attempt, and the path of states entered so far.
type StateError struct {
	State   string
	Attempt uint32
	Path    []string
	Cause   error
}

// Error names the state and the attempt, then the cause. Attempt 0 (no
// attempt counts for a cancel, an open breaker or a run timeout, as in
// cano) is left out rather than printed as "attempt 0".
func (e *StateError) Error() string {
	if e.Attempt == 0 {
		return fmt.Sprintf("in state %q (path %s): %v", e.State, strings.Join(e.Path, " → "), e.Cause)
	}
	return fmt.Sprintf("in state %q (attempt %d, path %s): %v", e.State, e.Attempt, strings.Join(e.Path, " → "), e.Cause)
}

// Unwrap returns the underlying error (its category matches with errors.Is).
func (e *StateError) Unwrap() error { return e.Cause }

// permanentError wraps an error the task wants never retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Is(t error) bool { return t == ErrPermanent }

// Permanent marks err as not worth retrying: the worker skips the remaining
// attempts and the task fails at once (cano retries everything; this is an
// improvement). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// errorInfo converts err to its wire form, keeping category, message,
// attempts, state context and cause chain.
func errorInfo(err error) *protocol.ErrorInfo {
	if err == nil {
		return nil
	}
	var se *StateError
	if errors.As(err, &se) {
		info := errorInfo(se.Cause)
		info.State, info.Path = se.State, se.Path
		if info.Attempts == 0 {
			info.Attempts = se.Attempt
		}
		return info
	}
	var re *RetryExhaustedError
	if errors.As(err, &re) {
		return &protocol.ErrorInfo{
			Category: protocol.CategoryRetryExhausted,
			Message:  re.Error(),
			Attempts: re.Attempts,
			Cause:    errorInfo(re.Cause),
		}
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		inner := errorInfo(pe.err)
		if inner.Category == protocol.CategoryTaskExecution {
			inner.Category = protocol.CategoryPermanent
		}
		return inner
	}
	var ce *Error
	if errors.As(err, &ce) {
		info := &protocol.ErrorInfo{Category: ce.Category, Message: ce.Error()}
		if ce.Cause != nil {
			info.Cause = errorInfo(ce.Cause)
		}
		return info
	}
	for cat, s := range categorySentinel {
		if errors.Is(err, s) {
			// The category is a field: the message does not repeat it.
			msg := strings.TrimPrefix(err.Error(), s.Error()+": ")
			return &protocol.ErrorInfo{Category: cat, Message: msg}
		}
	}
	return &protocol.ErrorInfo{Category: protocol.CategoryTaskExecution, Message: err.Error()}
}

// fromErrorInfo rebuilds a typed error from its wire form: a [*StateError]
// when the info carries a state, around a [*RetryExhaustedError] or an
// [*Error] of the category.
func fromErrorInfo(info *protocol.ErrorInfo) error {
	if info == nil {
		return nil
	}
	inner := fromInfoNoState(info)
	if info.State != "" {
		return &StateError{State: info.State, Attempt: info.Attempts, Path: info.Path, Cause: inner}
	}
	return inner
}

func fromInfoNoState(info *protocol.ErrorInfo) error {
	var cause error
	if info.Cause != nil {
		cause = fromInfoNoState(info.Cause)
	}
	// The message may already name the category ("fsm: configuration: …",
	// "configuration: …"): drop it so Error() does not say it twice.
	msg := strings.TrimPrefix(info.Message, "fsm: ")
	msg = strings.TrimPrefix(msg, string(info.Category)+": ")
	if info.Category == protocol.CategoryRetryExhausted {
		// One made by hand (fsm.NewError(CategoryRetryExhausted, "gateway
		// down")) carries its words in the message, not in a cause: keep them.
		if cause == nil && msg != "" && !strings.HasPrefix(msg, "task failed after ") {
			cause = errors.New(msg)
		}
		return &RetryExhaustedError{Attempts: info.Attempts, Cause: cause}
	}
	return &Error{Category: info.Category, Message: msg, Cause: cause}
}
