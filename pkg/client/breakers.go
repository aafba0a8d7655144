package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/internal/breakerkv"
	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/protocol"
)

// BreakerState is a shared circuit breaker's phase.
type BreakerState string

// Breaker states.
const (
	// BreakerClosed admits every call and counts consecutive failures.
	BreakerClosed BreakerState = "closed"
	// BreakerOpen rejects every call (the task fails with an error
	// matching fsm.ErrCircuitOpen) until OpenUntil.
	BreakerOpen BreakerState = "open"
	// BreakerHalfOpen admits up to HalfOpenMaxCalls concurrent probes.
	BreakerHalfOpen BreakerState = "half_open"
)

// BreakerInfo is a shared circuit breaker's state, as [Client.Breakers]
// returns it.
type BreakerInfo struct {
	// Name is the breaker's name (fsm.TaskConfig's breaker name).
	Name string
	// State is its phase.
	State BreakerState
	// Failures counts consecutive failures while closed.
	Failures int
	// OpenUntil is, while open, when it admits its next probe; zero
	// otherwise.
	OpenUntil time.Time
	// HalfOpenInFlight counts probes admitted and not yet reported, and
	// HalfOpenSuccesses the probe successes, while half-open.
	HalfOpenInFlight  int
	HalfOpenSuccesses int
	// Epoch identifies the current session: it changes on every state
	// change and only grows.
	Epoch uint64
	// UpdatedAt is when it last changed: when it entered State, or a
	// counter last moved.
	UpdatedAt time.Time
	// FailureThreshold, ResetTimeout and HalfOpenMaxCalls are its policy:
	// consecutive failures that open it, how long it stays open, and the
	// concurrent probes (and probe successes to close) when half-open. A
	// zero value means the worker's default.
	FailureThreshold int
	ResetTimeout     time.Duration
	HalfOpenMaxCalls int
}

// breakerFrom converts a wire breaker state.
func breakerFrom(b *protocol.BreakerState) BreakerInfo {
	return BreakerInfo{
		Name:              b.Name,
		State:             BreakerState(b.Phase),
		Failures:          int(b.ConsecutiveFailures),
		OpenUntil:         timeOf(b.OpenUntil),
		HalfOpenInFlight:  int(b.HalfOpenInFlight),
		HalfOpenSuccesses: int(b.HalfOpenSuccesses),
		Epoch:             b.Epoch,
		UpdatedAt:         timeOf(b.UpdatedAt),
		FailureThreshold:  int(b.Policy.FailureThreshold),
		ResetTimeout:      time.Duration(b.Policy.ResetTimeout),
		HalfOpenMaxCalls:  int(b.Policy.HalfOpenMaxCalls),
	}
}

// ErrBreakerNotFound is returned by [Client.ResetBreaker] for a breaker that
// does not exist. It wraps breaker.ErrNotFound.
var ErrBreakerNotFound = fmt.Errorf("client: %w", breaker.ErrNotFound)

// Breakers lists every shared circuit breaker (the breakers bucket), sorted
// by name, with its state, counters, policy and epoch. A breaker appears
// once some worker has used it. An entry that does not decode gives an
// error naming its key. If ctx has no deadline, Config.Timeout applies.
func (c *Client) Breakers(ctx context.Context) ([]BreakerInfo, error) {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, layout.BreakersBucket(c.names))
	if err != nil {
		return nil, fmt.Errorf("client: breakers bucket: %w", err)
	}
	list, err := breakerkv.List(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	out := make([]BreakerInfo, len(list))
	for i := range list {
		out[i] = breakerFrom(&list[i])
	}
	return out, nil
}

// ResetBreaker closes the named shared breaker and starts a new session:
// calls are admitted again at once, in every worker within its watcher
// latency, and outcomes of calls admitted before are ignored. It publishes
// an [EventBreaker] event with Detail "reset". It
// returns an error matching [ErrBreakerNotFound] (and breaker.ErrNotFound)
// for an unknown name. If ctx has no deadline, Config.Timeout applies.
func (c *Client) ResetBreaker(ctx context.Context, name string) error {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, layout.BreakersBucket(c.names))
	if err != nil {
		return fmt.Errorf("client: breakers bucket: %w", err)
	}
	if err := breakerkv.Reset(ctx, kv, name); err != nil {
		if errors.Is(err, breaker.ErrNotFound) {
			return fmt.Errorf("%w: %q", ErrBreakerNotFound, name)
		}
		return fmt.Errorf("client: %w", err)
	}
	ev := &protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventBreaker, RunID: name,
		Workflow: protocol.BreakerEventWorkflow, State: string(protocol.BreakerClosed), Time: time.Now().UnixNano(), Detail: "reset"}
	msg := &nats.Msg{Subject: c.names.EventSubject(protocol.BreakerEventWorkflow, name, protocol.EventBreaker),
		Data: wirecodec.AppendEventJSON(nil, ev), Header: nats.Header{}}
	msg.Header.Set(protocol.HeaderContentType, protocol.ContentTypeJSON)
	_ = c.nc.PublishMsg(msg)
	return nil
}
