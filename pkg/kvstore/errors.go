package kvstore

import (
	"errors"
	"fmt"

	"github.com/cano-nats/cano/internal/kvcore"
)

// Sentinel errors. They are returned wrapped with context (the key, the
// resource name); compare with [errors.Is].
var (
	// ErrNotFound: the key does not exist in the store (or was deleted).
	ErrNotFound = kvcore.ErrNotFound
	// ErrConflict: a compare-and-set write lost to a concurrent writer and
	// the operation gave up retrying (its context ended).
	ErrConflict = kvcore.ErrConflict
	// ErrTypeMismatch: a stored value cannot be decoded into the requested
	// type, or Append found a value that is not a msgpack array.
	ErrTypeMismatch = kvcore.ErrTypeMismatch
	// ErrInvalidKey: a key, prefix or scope name is empty, too long or uses
	// characters NATS KV keys do not allow.
	ErrInvalidKey = kvcore.ErrInvalidKey
	// ErrInvalidValue: a value handed to Append is not exactly one msgpack
	// value.
	ErrInvalidValue = kvcore.ErrInvalidValue
	// ErrValueTooLarge: the value (for Append: the whole array after the
	// append) is larger than the store's maximum value size. Values are
	// refused, never chunked.
	ErrValueTooLarge = kvcore.ErrValueTooLarge

	// ErrDuplicateKey: a resource is already registered under the key.
	ErrDuplicateKey = errors.New("kvstore: duplicate resource key")
	// ErrResourceNotFound: no resource is registered under the key.
	ErrResourceNotFound = errors.New("kvstore: resource not found")
	// ErrResourceTypeMismatch: the resource under the key is not of the
	// requested type.
	ErrResourceTypeMismatch = errors.New("kvstore: resource type mismatch")
	// ErrSetup is matched by every [*SetupError].
	ErrSetup = errors.New("kvstore: resource setup failed")
)

// SetupError reports the resource whose Setup failed in
// [Resources.SetupAll]. errors.Is(err, ErrSetup) is true for it, and it
// unwraps to the resource's own error.
type SetupError struct {
	// Key is the failing resource's key.
	Key string
	// Err is what its Setup returned.
	Err error
}

// Error implements error.
func (e *SetupError) Error() string {
	return fmt.Sprintf("kvstore: setup of resource %q failed: %v", e.Key, e.Err)
}

// Unwrap returns the resource's error.
func (e *SetupError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrSetup) true.
func (e *SetupError) Is(target error) bool { return target == ErrSetup }
