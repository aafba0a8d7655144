// Package kvcas recognises a lost compare-and-set on a JetStream KV key in
// one place.
//
// The server answers a write whose expected revision is not the key's
// current one with "wrong last sequence": API error code 10071, or 10164
// on a replicated stream. nats.go reports it as jetstream.ErrKeyExists from
// Create (and, for a Create over a deleted key that lost a race, as the
// bare API error), as jetstream.ErrKeyRevisionMismatch from Update and
// Delete, and as the bare API error from a publish that carries the
// expected-sequence header itself (a terminal run-record write with a
// TTL). [Conflict] is true for all of them, so every caller that re-reads
// and retries on a conflict asks the same question.
package kvcas

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Conflict reports whether err says a KV write lost a compare-and-set: the
// key was created, updated or deleted by someone else since the revision
// the write expected (a Create that found the key counts).
func Conflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	return wrongLastSequence(err)
}

// Mark wraps a "wrong last sequence" error with
// jetstream.ErrKeyRevisionMismatch, as KeyValue.Update does (nats.go's
// mapRevisionMismatch), for a write made by publishing to the key's
// subject with jetstream.ExpectedLastSubjSeqHeader. Other errors, and nil,
// are returned as they are.
func Mark(err error) error {
	if err != nil && wrongLastSequence(err) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("%w: %w", err, jetstream.ErrKeyRevisionMismatch)
	}
	return err
}

// wrongLastSequence reports whether err carries the server's "wrong last
// sequence" code: 10071, or 10164 from a replicated stream.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
