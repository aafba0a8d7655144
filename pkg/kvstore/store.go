package kvstore

import (
	"context"
	"fmt"

	"github.com/cano-nats/cano/internal/kvcore"
	"github.com/cano-nats/cano/internal/wirecodec"
)

// Store is a key/value store shared by the tasks of every worker process.
// Values are bytes; the typed helpers [PutValue], [GetAs] and
// [AppendValue] encode them with msgpack. Implementations are
// natskv.Store (package pkg/kvstore/natskv: JetStream KV, the default) and [*Memory] (one process, for tests); both
// pass the suite in package kvstoretest. Use [Scoped] for the global,
// per-workflow and per-run views.
//
// Keys are 1 to [MaxKeyLen] bytes of letters, digits and '-', '/', '_',
// '=', '.', with no leading or trailing '.' and no "..": the NATS KV key
// syntax. Anything else is refused with [ErrInvalidKey].
//
// Implementations are safe for concurrent use.
type Store interface {
	// Get returns the value under key, or an error wrapping [ErrNotFound].
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key, replacing any previous value. A value
	// larger than the store's maximum gives [ErrValueTooLarge].
	Put(ctx context.Context, key string, value []byte) error
	// Append atomically adds item, which must be exactly one msgpack value
	// ([ErrInvalidValue] otherwise), to the end of the msgpack array under
	// key, creating the array if the key does not exist. No append is lost
	// when many goroutines or processes append to one key at once. If the
	// key holds something other than a msgpack array it returns
	// [ErrTypeMismatch]; if the array would grow past the maximum value size,
	// [ErrValueTooLarge]. If ctx ends while the append is being written, the
	// item may or may not have been appended.
	Append(ctx context.Context, key string, item []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Keys returns, sorted, every key that starts with prefix ("" for all).
	// The prefix uses key characters but may end with '.'.
	Keys(ctx context.Context, prefix string) ([]string, error)
	// Watch sends every change made, after Watch returns, to a key that
	// starts with prefix, in the order each key changed. The channel is
	// closed when ctx ends (or the underlying watch fails). Watch does not
	// replay current values: to follow a key without missing a change, call
	// Watch first, then Get. A reader that falls behind may skip
	// intermediate values of a key that changes quickly (a KV bucket keeps
	// one revision per key), but always receives each key's latest change.
	Watch(ctx context.Context, prefix string) (<-chan Change, error)
}

// Op is the kind of a [Change].
type Op int

const (
	// OpPut: the key was written (Put or Append).
	OpPut Op = iota
	// OpDelete: the key was deleted.
	OpDelete
)

// String returns "put" or "delete".
func (o Op) String() string {
	if o == OpDelete {
		return "delete"
	}
	return "put"
}

// Change is one change reported by [Store.Watch].
type Change struct {
	// Key is the changed key, relative to the watched store (a scoped view
	// reports keys without its scope prefix).
	Key string
	// Op says whether the key was written or deleted.
	Op Op
	// Value is the new value; nil for OpDelete.
	Value []byte
}

// MaxKeyLen is the longest key accepted, in bytes, including any scope
// prefix.
const MaxKeyLen = kvcore.MaxKeyLen

// ValidateKey reports whether key is usable in a [Store]: it returns nil or
// an error wrapping [ErrInvalidKey] that says what is wrong.
func ValidateKey(key string) error {
	return kvcore.ValidateKey(key)
}

// PutValue msgpack-encodes v and stores it under key with [Store.Put].
func PutValue[T any](ctx context.Context, s Store, key string, v T) error {
	b, err := encode(v)
	if err != nil {
		return fmt.Errorf("kvstore: put %q: %w", key, err)
	}
	return s.Put(ctx, key, b)
}

// GetAs reads key with [Store.Get] and decodes it into a T. A value that
// does not decode into a T gives an error wrapping [ErrTypeMismatch]; a
// missing key, [ErrNotFound]. A list built with [AppendValue] reads back as
// a []E.
func GetAs[T any](ctx context.Context, s Store, key string) (T, error) {
	var zero T
	b, err := s.Get(ctx, key)
	if err != nil {
		return zero, err
	}
	v, err := Decode[T](b)
	if err != nil {
		return zero, fmt.Errorf("kvstore: get %q: %w", key, err)
	}
	return v, nil
}

// AppendValue msgpack-encodes item and appends it to the array under key
// with [Store.Append].
func AppendValue[T any](ctx context.Context, s Store, key string, item T) error {
	b, err := encode(item)
	if err != nil {
		return fmt.Errorf("kvstore: append %q: %w", key, err)
	}
	return s.Append(ctx, key, b)
}

// Decode decodes a msgpack value, such as a [Change]'s Value, into a T. A
// value that does not decode into a T gives an error wrapping
// [ErrTypeMismatch].
func Decode[T any](b []byte) (T, error) {
	var v T
	if err := decode(b, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// The store's value encoding is the wire contract's value codec
// (wirecodec.EncodeValue, wirecodec.DecodeValue): msgpack with compact
// integers and sorted map keys, decoded behind the structure check, since a
// store value may have been written by any process.

func encode(v any) ([]byte, error) {
	b, err := wirecodec.EncodeValue(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// decode decodes exactly one msgpack value from b into ptr. Any failure,
// including a panic inside the decoder, wraps ErrTypeMismatch.
func decode(b []byte, ptr any) error {
	if err := wirecodec.DecodeValue(b, ptr); err != nil {
		return fmt.Errorf("%w: decode into %T: %v", ErrTypeMismatch, ptr, err)
	}
	return nil
}
