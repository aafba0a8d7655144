package protocol

import (
	"errors"
	"fmt"
)

// Sentinel errors returned (wrapped) by decoders and validators. Compare with
// [errors.Is].
var (
	// ErrMalformed: the bytes are not a valid encoding of the message.
	ErrMalformed = errors.New("protocol: malformed message")
	// ErrTooLarge: the payload exceeds the configured maximum.
	ErrTooLarge = errors.New("protocol: payload too large")
	// ErrSchemaVersion: the message carries a schema version this build does not know.
	ErrSchemaVersion = errors.New("protocol: unknown schema version")
	// ErrMissingField: a required field is empty.
	ErrMissingField = errors.New("protocol: missing required field")
	// ErrInvalidField: a field has a value outside its domain.
	ErrInvalidField = errors.New("protocol: invalid field")
	// ErrInvalidName: a name (workflow, kind, queue, run id, prefix) is not a valid token.
	ErrInvalidName = errors.New("protocol: invalid name")
)

func missing(msg, field string) error {
	return fmt.Errorf("%w: %s.%s", ErrMissingField, msg, field)
}

func invalid(msg, field, why string) error {
	return fmt.Errorf("%w: %s.%s: %s", ErrInvalidField, msg, field, why)
}

func badName(msg, field string, err error) error {
	return fmt.Errorf("%s.%s: %w", msg, field, err)
}
