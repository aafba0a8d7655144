package breakerkv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/protocol"
)

// List returns every shared breaker in kv (the breakers bucket), sorted by
// name, with Epoch resolved to the KV revision that started each one's
// session. Deleted keys are skipped; a value that does not decode gives an
// error naming its key. If ctx has no deadline, breaker.TimeoutDefault applies.
//
// The key listing is a snapshot taken by a KV watcher: while other
// breakers change state it may end before every key is seen (nats.go
// counts a newer value of a key already listed toward the initial values),
// so a breaker that exists can be missing from one call; the next call
// lists it.
func List(ctx context.Context, kv jetstream.KeyValue) ([]protocol.BreakerState, error) {
	ctx, cancel := deadline.Default(ctx, breaker.TimeoutDefault)
	defer cancel()
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []protocol.BreakerState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("breaker: list: %w", err)
	}
	out := make([]protocol.BreakerState, 0, len(keys))
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("breaker: list: get %s: %w", k, err)
		}
		st, err := decodeState(e)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b protocol.BreakerState) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Reset closes the named shared breaker and starts a new session (a new
// epoch), keeping its stored policy: outcomes of permits issued before are
// ignored. It writes with compare-and-set, retrying on conflict. Watching
// processes see it within their watcher latency; their OnTransitionFunc is
// not called. It returns [breaker.ErrNotFound] if the breaker does not exist. If ctx
// has no deadline, breaker.TimeoutDefault applies.
func Reset(ctx context.Context, kv jetstream.KeyValue, name string) error {
	if err := protocol.ValidToken(name); err != nil {
		return fmt.Errorf("breaker: reset: name: %w", err)
	}
	ctx, cancel := deadline.Default(ctx, breaker.TimeoutDefault)
	defer cancel()
	key := layout.BreakerKey(name)
	for {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %s", breaker.ErrNotFound, name)
		}
		if err != nil {
			return fmt.Errorf("breaker: reset %s: %w", name, err)
		}
		var policy breaker.Policy
		if st, err := decodeState(e); err == nil {
			policy = wirecodec.BreakerPolicyFromWire(st.Policy)
		}
		data, err := encodeSnapshot(name, breaker.Snapshot{State: breaker.StateClosed, Policy: policy, UpdatedAt: time.Now()}, true)
		if err != nil {
			return err
		}
		_, err = kv.Update(ctx, key, data, e.Revision())
		if err == nil {
			return nil
		}
		if !kvcas.Conflict(err) {
			return fmt.Errorf("breaker: reset %s: %w", name, err)
		}
	}
}
