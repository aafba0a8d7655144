package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrBreakerNotFound is returned by [Client.ResetBreaker] for a breaker that
// does not exist. It wraps breaker.ErrNotFound.
var ErrBreakerNotFound = fmt.Errorf("client: %w", breaker.ErrNotFound)

// Breakers lists every shared circuit breaker (the breakers bucket), sorted
// by name, with its phase, counters, policy and epoch. A breaker appears once
// some worker has used it. If ctx has no deadline, Config.Timeout applies.
func (c *Client) Breakers(ctx context.Context) ([]protocol.BreakerState, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, c.names.BreakersBucket())
	if err != nil {
		return nil, fmt.Errorf("client: breakers bucket: %w", err)
	}
	out, err := breaker.List(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return out, nil
}

// ResetBreaker closes the named shared breaker and starts a new session:
// calls are admitted again at once, in every worker within its watcher
// latency, and outcomes of calls admitted before are ignored. It publishes a
// breaker event (see protocol.BreakerEventWorkflow) with Detail "reset". It
// returns an error matching [ErrBreakerNotFound] (and breaker.ErrNotFound)
// for an unknown name. If ctx has no deadline, Config.Timeout applies.
func (c *Client) ResetBreaker(ctx context.Context, name string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, c.names.BreakersBucket())
	if err != nil {
		return fmt.Errorf("client: breakers bucket: %w", err)
	}
	if err := breaker.Reset(ctx, kv, name); err != nil {
		if errors.Is(err, breaker.ErrNotFound) {
			return fmt.Errorf("%w: %q", ErrBreakerNotFound, name)
		}
		return fmt.Errorf("client: %w", err)
	}
	ev := &protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventBreaker, RunID: name,
		Workflow: protocol.BreakerEventWorkflow, State: string(protocol.BreakerClosed), Time: time.Now().UnixNano(), Detail: "reset"}
	if data, err := protocol.Encode(ev); err == nil {
		_ = c.nc.Publish(c.names.EventSubject(protocol.BreakerEventWorkflow, name, protocol.EventBreaker), data)
	}
	return nil
}
