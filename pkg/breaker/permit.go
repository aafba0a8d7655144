package breaker

import (
	"context"
	"sync/atomic"
)

// Permit authorises one call admitted by [Breaker.Acquire]. Report its
// outcome exactly once with [Permit.Success] or [Permit.Failure]; later
// reports are ignored. A permit that is never reported counts as a failure
// once [Permit.Release] runs, so callers must always call it, typically
// `defer p.Release()` right after Acquire (cano does this on drop). Outcomes
// of a permit issued in an earlier epoch (the breaker has changed state since)
// are ignored. A nil *Permit is valid: every method does nothing. A Permit is
// safe for concurrent use.
type Permit struct {
	b    *Breaker
	t    ticket
	done atomic.Bool
}

// Epoch returns the epoch the permit was issued in.
func (p *Permit) Epoch() uint64 {
	if p == nil {
		return 0
	}
	return p.t.epoch
}

// Probe reports whether the permit is a half-open probe.
func (p *Permit) Probe() bool { return p != nil && p.t.halfOpen }

// Success records a successful call. While the breaker is closed and no
// failures are counted it does no I/O. It returns a store error, if any.
func (p *Permit) Success(ctx context.Context) error {
	if p == nil || !p.done.CompareAndSwap(false, true) {
		return nil
	}
	return p.b.record(ctx, p.t, true)
}

// Failure records a failed call (a timeout counts as one). It returns a
// store error, if any.
func (p *Permit) Failure(ctx context.Context) error {
	if p == nil || !p.done.CompareAndSwap(false, true) {
		return nil
	}
	return p.b.record(ctx, p.t, false)
}

// Release records a failure if no outcome was reported yet, and otherwise
// does nothing. It uses a background context; the store bounds it with its
// default timeout.
func (p *Permit) Release() error {
	return p.Failure(context.Background())
}
