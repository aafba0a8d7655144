package kvcore

import "errors"

// The store's sentinel errors; pkg/kvstore re-exports and documents them.
var (
	// ErrNotFound is kvstore.ErrNotFound.
	ErrNotFound = errors.New("kvstore: key not found")
	// ErrConflict is kvstore.ErrConflict.
	ErrConflict = errors.New("kvstore: conflicting concurrent update")
	// ErrTypeMismatch is kvstore.ErrTypeMismatch.
	ErrTypeMismatch = errors.New("kvstore: type mismatch")
	// ErrInvalidKey is kvstore.ErrInvalidKey.
	ErrInvalidKey = errors.New("kvstore: invalid key")
	// ErrInvalidValue is kvstore.ErrInvalidValue.
	ErrInvalidValue = errors.New("kvstore: invalid value")
	// ErrValueTooLarge is kvstore.ErrValueTooLarge.
	ErrValueTooLarge = errors.New("kvstore: value too large")
)
