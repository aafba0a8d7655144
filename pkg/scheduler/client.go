package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TimeoutDefault bounds each KV or publish call whose context has no deadline.
const TimeoutDefault = 5 * time.Second

// casAttempts bounds read-modify-write retries on conflicts.
const casAttempts = 8

// ClientConfig configures a [Client]. The zero value uses the defaults.
type ClientConfig struct {
	// Prefix of every name. Defaults to protocol.PrefixDefault.
	Prefix string
	// Timeout bounds each call whose context has no deadline. Defaults to
	// TimeoutDefault.
	Timeout time.Duration
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	return c
}

func (c ClientConfig) validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("scheduler: ClientConfig.Timeout must be positive, got %s", c.Timeout)
	}
	if _, err := protocol.NewNames(c.Prefix); err != nil {
		return fmt.Errorf("scheduler: ClientConfig.Prefix: %w", err)
	}
	return nil
}

// Client manages flows from any process: it reads and writes the schedules
// bucket, and the scheduler leader reacts to what it writes. It is safe for
// concurrent use and does not close the JetStream connection it is given.
type Client struct {
	js    jetstream.JetStream
	cfg   ClientConfig
	names protocol.Names
}

// NewClient returns a client. It does no I/O.
func NewClient(js jetstream.JetStream, cfg ClientConfig) (*Client, error) {
	if js == nil {
		return nil, errors.New("scheduler: no JetStream context (nil): pass one from jetstream.New(nc)")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Client{js: js, cfg: cfg, names: protocol.MustNames(cfg.Prefix)}, nil
}

func (c *Client) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := c.js.KeyValue(ctx, layout.SchedulesBucket(c.names))
	if err != nil {
		return nil, fmt.Errorf("scheduler: open bucket %s: %w", layout.SchedulesBucket(c.names), err)
	}
	return kv, nil
}

// Add stores a new flow; the leader starts firing it. It returns an error
// wrapping [ErrInvalidFlow] (nothing stored) for a malformed flow, e.g. an
// invalid cron expression or an Input that is not msgpack, and
// [ErrFlowExists] if the id is taken. It does not check that Workflow is
// registered, so that flows may be added before the workers that register
// their workflows start (`canoctl flows add` does check): a flow whose
// workflow is unknown when it fires backs off, its triggers dead-lettered
// with the reason.
func (c *Client) Add(ctx context.Context, f Flow) error {
	if _, err := compile(&f); err != nil {
		return err
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	data, err := wirecodec.Encode(f.toWire(1))
	if err != nil {
		return err
	}
	if _, err := kv.Create(ctx, layout.ScheduleKey(f.ID), data); err != nil {
		if kvcas.Conflict(err) {
			return fmt.Errorf("%w: %q", ErrFlowExists, f.ID)
		}
		return fmt.Errorf("scheduler: add %s: %w", f.ID, err)
	}
	// Make the status readable at once; the leader may have written it.
	st := newStatus(f.ID)
	if data, err := wirecodec.Encode(&st); err == nil {
		_, _ = kv.Create(ctx, layout.FlowStatusKey(f.ID), data)
	}
	return nil
}

// Update replaces a stored flow; the leader stops the old schedule and
// starts the new one, keeping the flow's status (streak, run count). It
// returns an error wrapping [ErrInvalidFlow] (nothing changed) for a
// malformed flow and [ErrFlowNotFound] for an unknown id.
func (c *Client) Update(ctx context.Context, f Flow) error {
	if _, err := compile(&f); err != nil {
		return err
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	for range casAttempts {
		old, rev, err := c.get(ctx, kv, f.ID)
		if err != nil {
			return err
		}
		data, err := wirecodec.Encode(f.toWire(old.Version + 1))
		if err != nil {
			return err
		}
		_, err = kv.Update(ctx, layout.ScheduleKey(f.ID), data, rev)
		if err == nil {
			return nil
		}
		if !kvcas.Conflict(err) {
			return fmt.Errorf("scheduler: update %s: %w", f.ID, err)
		}
	}
	return fmt.Errorf("%w: update %s", ErrConflict, f.ID)
}

// Remove deletes a flow and its status; the leader stops firing it. A run
// in progress is not cancelled. It returns [ErrFlowNotFound] for an unknown
// id.
func (c *Client) Remove(ctx context.Context, id string) error {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	if _, _, err := c.get(ctx, kv, id); err != nil {
		return err
	}
	for _, key := range []string{layout.ScheduleKey(id), layout.FlowStatusKey(id), layout.FlowTriggerKey(id)} {
		if err := kv.Purge(ctx, key); err != nil {
			return fmt.Errorf("scheduler: remove %s: %w", id, err)
		}
	}
	return nil
}

// Trigger asks the leader to run the flow now. It bypasses backoff and a
// pause, but not a trip. It returns [ErrFlowNotFound], [ErrFlowTripped] or [ErrFlowRunning]
// as seen in the stored status; otherwise it records the request, which the
// leader (now, or the next one elected) acts on once. Triggering again
// before the leader acted coalesces with the pending request.
func (c *Client) Trigger(ctx context.Context, id string) error {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	info, err := c.Status(ctx, id)
	if err != nil {
		return err
	}
	switch info.Status {
	case StatusTripped:
		return fmt.Errorf("%w: %q (streak %d): reset it first", ErrFlowTripped, id, info.FailureStreak)
	case StatusRunning:
		return fmt.Errorf("%w: %q", ErrFlowRunning, id)
	}
	kv, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Create(ctx, layout.FlowTriggerKey(id), []byte(id)); err != nil && !kvcas.Conflict(err) {
		return fmt.Errorf("scheduler: trigger %s: %w", id, err)
	}
	return nil
}

// Reset clears a flow's failure streak and backoff window, and untrips it
// (cano's reset_flow): the status becomes Idle unless a run is in progress.
// An Every flow then runs at once (after Resume, if it is paused). A pause
// is kept. It returns [ErrFlowNotFound] for an unknown id.
func (c *Client) Reset(ctx context.Context, id string) error {
	return c.mutateStatus(ctx, id, "reset", func(_ *protocol.Schedule, st protocol.FlowStatus) (protocol.FlowStatus, bool) {
		return reset(st), true
	})
}

// Pause stops a flow's schedule: the leader fires none of its cron slots or
// intervals until [Client.Resume]; slots passed meanwhile are not counted
// as skipped. A run in progress goes on. As Temporal's schedule pause, a
// manual [Client.Trigger] still runs a paused flow. The pause is stored in
// the flow's status in the schedules bucket, so it holds across leader
// changes and restarts. Pausing a paused flow does nothing. It returns
// [ErrFlowNotFound] for an unknown id.
func (c *Client) Pause(ctx context.Context, id string) error {
	now := time.Now()
	return c.mutateStatus(ctx, id, "pause", func(_ *protocol.Schedule, st protocol.FlowStatus) (protocol.FlowStatus, bool) {
		return pause(st, now)
	})
}

// Resume undoes [Client.Pause]. The schedule continues from its next time
// after now, without firing slots missed while paused: a cron flow fires
// its next slot, an Every flow runs at the first time after now on its
// interval grid (its next eligible time plus whole intervals), or at once
// if it never ran or was reset. Resuming a flow that is not paused does
// nothing. It returns [ErrFlowNotFound] for an unknown id.
func (c *Client) Resume(ctx context.Context, id string) error {
	now := time.Now()
	return c.mutateStatus(ctx, id, "resume", func(s *protocol.Schedule, st protocol.FlowStatus) (protocol.FlowStatus, bool) {
		var every time.Duration
		if s.Kind == protocol.FlowEvery {
			every = time.Duration(s.Every)
		}
		return resume(st, every, now)
	})
}

// mutateStatus applies fn to the stored status of flow id and writes it
// with compare-and-set, re-reading and re-applying on conflicts. fn returns
// false to write nothing.
func (c *Client) mutateStatus(ctx context.Context, id, op string,
	fn func(*protocol.Schedule, protocol.FlowStatus) (protocol.FlowStatus, bool)) error {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.bucket(ctx)
	if err != nil {
		return err
	}
	s, _, err := c.get(ctx, kv, id)
	if err != nil {
		return err
	}
	for range casAttempts {
		st, rev, err := c.getStatus(ctx, kv, id)
		if err != nil {
			return err
		}
		ns, write := fn(s, st)
		if !write {
			return nil
		}
		data, err := wirecodec.Encode(&ns)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = kv.Create(ctx, layout.FlowStatusKey(id), data)
		} else {
			_, err = kv.Update(ctx, layout.FlowStatusKey(id), data, rev)
		}
		if err == nil {
			return nil
		}
		if !kvcas.Conflict(err) {
			return fmt.Errorf("scheduler: %s %s: %w", op, id, err)
		}
	}
	return fmt.Errorf("%w: %s %s", ErrConflict, op, id)
}

// Status returns a flow and its status. It returns [ErrFlowNotFound] for an
// unknown id.
func (c *Client) Status(ctx context.Context, id string) (FlowInfo, error) {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.bucket(ctx)
	if err != nil {
		return FlowInfo{}, err
	}
	s, _, err := c.get(ctx, kv, id)
	if err != nil {
		return FlowInfo{}, err
	}
	st, _, err := c.getStatus(ctx, kv, id)
	if err != nil {
		return FlowInfo{}, err
	}
	info := infoFromWire(s, &st)
	if p, err := compile(&info.Flow); err == nil {
		info.NextSlot = p.next(time.Now())
	}
	return info, nil
}

// List returns every flow with its status, sorted by id.
func (c *Client) List(ctx context.Context) ([]FlowInfo, error) {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.bucket(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("scheduler: list: %w", err)
	}
	var ids []string
	for key := range keys.Keys() {
		if kind, id, ok := layout.ParseSchedulesKey(key); ok && kind == layout.SchedulesKeyFlow {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := make([]FlowInfo, 0, len(ids))
	for _, id := range ids {
		info, err := c.Status(ctx, id)
		if errors.Is(err, ErrFlowNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// get reads a stored flow and its revision.
func (c *Client) get(ctx context.Context, kv jetstream.KeyValue, id string) (*protocol.Schedule, uint64, error) {
	e, err := kv.Get(ctx, layout.ScheduleKey(id))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil, 0, fmt.Errorf("%w: %q", ErrFlowNotFound, id)
		}
		if errors.Is(err, jetstream.ErrInvalidKey) {
			return nil, 0, fmt.Errorf("%w: %q", ErrFlowNotFound, id)
		}
		return nil, 0, fmt.Errorf("scheduler: get %s: %w", id, err)
	}
	var s protocol.Schedule
	if err := wirecodec.Decode(e.Value(), &s, 0); err != nil {
		return nil, 0, fmt.Errorf("scheduler: flow %s: %w", id, err)
	}
	return &s, e.Revision(), nil
}

// getStatus reads a flow's status; a missing status is a fresh one with
// revision 0.
func (c *Client) getStatus(ctx context.Context, kv jetstream.KeyValue, id string) (protocol.FlowStatus, uint64, error) {
	return readStatus(ctx, kv, id)
}

func readStatus(ctx context.Context, kv jetstream.KeyValue, id string) (protocol.FlowStatus, uint64, error) {
	e, err := kv.Get(ctx, layout.FlowStatusKey(id))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return newStatus(id), 0, nil
		}
		return protocol.FlowStatus{}, 0, fmt.Errorf("scheduler: status %s: %w", id, err)
	}
	var st protocol.FlowStatus
	if err := wirecodec.Decode(e.Value(), &st, 0); err != nil {
		return protocol.FlowStatus{}, 0, fmt.Errorf("scheduler: status %s: %w", id, err)
	}
	return st, e.Revision(), nil
}
