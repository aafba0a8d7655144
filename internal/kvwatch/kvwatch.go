// Package kvwatch reads the current entries of a JetStream KV watch: the
// values a new watcher delivers before its end-of-initial-values marker.
// Client listings and the worker's join reads share it.
package kvwatch

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrEndedEarly is returned when the watch closes before its
// end-of-initial-values marker.
var ErrEndedEarly = errors.New("kvwatch: the watch ended before every current entry was read")

// Current calls fn with each entry w delivers until the end-of-initial-values
// marker, then stops w. It returns ctx's error if ctx ends first,
// [ErrEndedEarly] if the watch closes, or fn's first error. w is stopped and
// drained in every case: its callback blocks on a full updates channel, and
// an early return must leave no goroutine behind.
func Current(ctx context.Context, w jetstream.KeyWatcher, fn func(jetstream.KeyValueEntry) error) error {
	defer func() {
		_ = w.Stop()
		go func() {
			for range w.Updates() {
			}
		}()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return ErrEndedEarly
			case e == nil:
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}
