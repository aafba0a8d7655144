package breaker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Breaker is a named circuit breaker whose state lives in a [Store]: a
// [LocalStore] for a process-local breaker, the engine's KV store for one shared by
// every process that uses the same name. It is safe for concurrent use.
//
// Call [Breaker.Acquire] before each call to the protected dependency and
// report the outcome on the returned [Permit]:
//
//	p, err := b.Acquire(ctx)
//	if err != nil {
//		return err // errors.Is(err, breaker.ErrOpen): fail fast
//	}
//	defer p.Release() // a permit never reported counts as a failure
//	if err := call(ctx); err != nil {
//		_ = p.Failure(ctx)
//		return err
//	}
//	return p.Success(ctx)
type Breaker struct {
	name  string
	store Store
	s     Settings
}

// New returns a breaker named name whose state lives in store. Zero fields
// of s take their defaults; an invalid field gives an error wrapping
// [ErrInvalidSettings] that names it. New does no I/O.
func New(name string, store Store, s Settings) (*Breaker, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: name is empty", ErrInvalidSettings)
	}
	if store == nil {
		return nil, fmt.Errorf("%w: store is nil", ErrInvalidSettings)
	}
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &Breaker{name: name, store: store, s: s}, nil
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// Policy returns the breaker's policy, with defaults filled in.
func (b *Breaker) Policy() Policy { return b.s.Policy }

// Snapshot returns the breaker's current state as its store sees it. For a
// KV store that is the locally watched copy.
func (b *Breaker) Snapshot(ctx context.Context) (Snapshot, error) {
	snap, err := b.store.Load(ctx, b.name)
	if err != nil {
		return snap, fmt.Errorf("breaker: %s: load: %w", b.name, err)
	}
	return snap, nil
}

// Acquire asks to make one call. It returns a [Permit] on which the caller
// must report the outcome, or an [*OpenError] wrapping [ErrOpen] (open, still
// cooling down) or [ErrHalfOpenExhausted] (half-open, every trial slot in
// use), or a store error.
//
// While the breaker is closed, Acquire only reads the store's local copy: a
// KV store adds no broker round trip. An open breaker past its cool-down is
// turned half-open by the first Acquire (in any process, for a shared
// breaker), which becomes the probe.
func (b *Breaker) Acquire(ctx context.Context) (*Permit, error) {
	cur, err := b.store.Load(ctx, b.name)
	if err != nil {
		return nil, fmt.Errorf("breaker: %s: load: %w", b.name, err)
	}
	now := b.s.Clock.Now()
	switch {
	case cur.phase() == StateClosed:
		return &Permit{b: b, t: ticket{epoch: cur.Epoch}}, nil
	case cur.phase() == StateOpen && now.Before(cur.OpenUntil):
		return nil, &OpenError{Name: b.name, Until: cur.OpenUntil, err: ErrOpen}
	}
	var (
		t       ticket
		from    State
		to      State
		until   time.Time
		changed bool
	)
	got, err := b.store.Update(ctx, b.name, func(cur Snapshot) (Snapshot, bool, error) {
		next, write, tk, err := cur.acquire(b.s.Policy, now)
		t, from, to, until = tk, cur.phase(), next.phase(), cur.OpenUntil
		changed = write && next.Epoch != cur.Epoch
		if write {
			next.Policy = b.s.Policy
		}
		return next, write, err
	})
	switch {
	case errors.Is(err, ErrHalfOpenExhausted):
		return nil, &OpenError{Name: b.name, err: ErrHalfOpenExhausted}
	case errors.Is(err, ErrOpen):
		return nil, &OpenError{Name: b.name, Until: until, err: ErrOpen}
	case err != nil:
		return nil, fmt.Errorf("breaker: %s: acquire: %w", b.name, err)
	}
	// The store may have assigned the epoch (KV revision); the ticket is for
	// the session now stored.
	t.epoch = got.Epoch
	if changed {
		b.report(from, to, got, now)
	}
	return &Permit{b: b, t: t}, nil
}

// record stores one outcome.
func (b *Breaker) record(ctx context.Context, t ticket, ok bool) error {
	cur, err := b.store.Load(ctx, b.name)
	if err != nil {
		return fmt.Errorf("breaker: %s: load: %w", b.name, err)
	}
	if cur.Epoch != t.epoch {
		// Stale: the local copy never lags behind a permit this breaker
		// issued, so a different epoch is a later session.
		return nil
	}
	if ok && !t.halfOpen && cur.phase() == StateClosed && cur.ConsecutiveFailures == 0 {
		return nil // fast path: nothing to reset
	}
	now := b.s.Clock.Now()
	var (
		from, to State
		changed  bool
	)
	got, err := b.store.Update(ctx, b.name, func(cur Snapshot) (Snapshot, bool, error) {
		var next Snapshot
		var write bool
		if ok {
			next, write = cur.success(b.s.Policy, t, now)
		} else {
			next, write = cur.failure(b.s.Policy, t, now)
		}
		from, to = cur.phase(), next.phase()
		changed = write && next.Epoch != cur.Epoch
		if write {
			next.Policy = b.s.Policy
		}
		return next, write, nil
	})
	if err != nil {
		return fmt.Errorf("breaker: %s: record outcome: %w", b.name, err)
	}
	if changed {
		b.report(from, to, got, now)
	}
	return nil
}

func (b *Breaker) report(from, to State, got Snapshot, now time.Time) {
	if b.s.OnTransitionFunc == nil {
		return
	}
	b.s.OnTransitionFunc(Transition{
		Name: b.name, From: from, To: to, Epoch: got.Epoch, At: now, OpenUntil: got.OpenUntil,
	})
}
