package breaker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/breaker"
)

// runStoreTests is the conformance suite every breaker.Store runs: cano's
// breaker scenarios through a single Breaker on a fresh store.
func runStoreTests(t *testing.T, newStore func(t *testing.T) breaker.Store) {
	t.Helper()

	type testBundle struct {
		b     *breaker.Breaker
		store breaker.Store
		clock *manualClock
		rec   *recorder
		name  string
	}
	policy := breaker.Policy{FailureThreshold: 3, ResetTimeout: 20 * time.Second, HalfOpenMaxCalls: 2}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		tb := &testBundle{store: newStore(t), clock: newManualClock(), rec: &recorder{}, name: uniqueName()}
		b, err := breaker.New(tb.name, tb.store, breaker.Settings{
			Policy: policy, Clock: tb.clock, OnTransitionFunc: tb.rec.record,
		})
		require.NoError(t, err)
		tb.b = b
		return tb
	}
	ctx := context.Background()
	fail := func(t *testing.T, b *breaker.Breaker, n int) {
		t.Helper()
		for range n {
			p, err := b.Acquire(ctx)
			require.NoError(t, err)
			require.NoError(t, p.Failure(ctx))
		}
	}
	state := func(t *testing.T, b *breaker.Breaker) breaker.Snapshot {
		t.Helper()
		s, err := b.Snapshot(ctx)
		require.NoError(t, err)
		return s
	}

	t.Run("FreshBreakerIsClosed", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		s := state(t, tb.b)
		require.Equal(t, breaker.StateClosed, s.State)
		require.Zero(t, s.ConsecutiveFailures)
	})

	t.Run("ConsecutiveFailuresTrip", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		fail(t, tb.b, 2)
		p, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, p.Success(ctx)) // resets the count
		fail(t, tb.b, 2)
		require.Equal(t, breaker.StateClosed, state(t, tb.b).State)
		require.Equal(t, 2, state(t, tb.b).ConsecutiveFailures)
		fail(t, tb.b, 1)
		s := state(t, tb.b)
		require.Equal(t, breaker.StateOpen, s.State)
		require.Equal(t, tb.clock.Now().Add(policy.ResetTimeout), s.OpenUntil)

		_, err = tb.b.Acquire(ctx)
		require.ErrorIs(t, err, breaker.ErrOpen)
		var oe *breaker.OpenError
		require.True(t, errors.As(err, &oe))
		require.Equal(t, tb.name, oe.Name)
		require.Equal(t, s.OpenUntil, oe.Until)
		require.Equal(t, []string{"closed>open"}, tb.rec.edges())
		require.Equal(t, s.Epoch, tb.rec.transitions()[0].Epoch)
	})

	t.Run("LazyHalfOpenProbeLimitAndClose", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		fail(t, tb.b, 3)
		tb.clock.Advance(policy.ResetTimeout - time.Nanosecond)
		_, err := tb.b.Acquire(ctx)
		require.ErrorIs(t, err, breaker.ErrOpen)
		require.Equal(t, breaker.StateOpen, state(t, tb.b).State, "no timer: still open")

		tb.clock.Advance(time.Nanosecond)
		require.Equal(t, breaker.StateOpen, state(t, tb.b).State, "lazy: open until an acquire")
		p1, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		require.True(t, p1.Probe())
		require.Equal(t, breaker.StateHalfOpen, state(t, tb.b).State)
		p2, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		_, err = tb.b.Acquire(ctx)
		require.ErrorIs(t, err, breaker.ErrHalfOpenExhausted)
		require.ErrorIs(t, err, breaker.ErrOpen)

		require.NoError(t, p1.Success(ctx))
		require.Equal(t, breaker.StateHalfOpen, state(t, tb.b).State, "one success of two")
		require.NoError(t, p2.Success(ctx))
		s := state(t, tb.b)
		require.Equal(t, breaker.StateClosed, s.State)
		require.Zero(t, s.ConsecutiveFailures)
		require.Equal(t, []string{"closed>open", "open>half_open", "half_open>closed"}, tb.rec.edges())
		trs := tb.rec.transitions()
		for i := 1; i < len(trs); i++ {
			require.Greater(t, trs[i].Epoch, trs[i-1].Epoch, "epochs grow")
		}
		require.Equal(t, s.Epoch, trs[len(trs)-1].Epoch)
	})

	t.Run("ProbeFailureReopensWithFreshDeadline", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		fail(t, tb.b, 3)
		tb.clock.Advance(time.Minute)
		p, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, p.Failure(ctx))
		s := state(t, tb.b)
		require.Equal(t, breaker.StateOpen, s.State)
		require.Equal(t, tb.clock.Now().Add(policy.ResetTimeout), s.OpenUntil)
		require.Equal(t, []string{"closed>open", "open>half_open", "half_open>open"}, tb.rec.edges())
	})

	t.Run("StaleClosedPermitDoesNotCloseLaterHalfOpen", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		stale, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		staleFail, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		fail(t, tb.b, 3)
		tb.clock.Advance(time.Minute)
		probe, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		require.NotEqual(t, stale.Epoch(), probe.Epoch())

		require.NoError(t, stale.Success(ctx))
		require.NoError(t, staleFail.Failure(ctx))
		s := state(t, tb.b)
		require.Equal(t, breaker.StateHalfOpen, s.State, "stale outcomes are ignored")
		require.Equal(t, 1, s.HalfOpenInFlight)
		require.NoError(t, probe.Success(ctx))
		p2, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, p2.Success(ctx))
		require.Equal(t, breaker.StateClosed, state(t, tb.b).State)
	})

	t.Run("ReleasedPermitCountsAsFailure", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		for range 3 {
			p, err := tb.b.Acquire(ctx)
			require.NoError(t, err)
			require.NoError(t, p.Release())
		}
		require.Equal(t, breaker.StateOpen, state(t, tb.b).State)
	})

	t.Run("OutcomeIsReportedOnce", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		p, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, p.Failure(ctx))
		require.NoError(t, p.Failure(ctx))
		require.NoError(t, p.Success(ctx))
		require.NoError(t, p.Release())
		require.Equal(t, 1, state(t, tb.b).ConsecutiveFailures)

		q, err := tb.b.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, q.Success(ctx))
		require.NoError(t, q.Release(), "release after an outcome does nothing")
		require.Zero(t, state(t, tb.b).ConsecutiveFailures)

		var nilPermit *breaker.Permit
		require.NoError(t, nilPermit.Release())
		require.NoError(t, nilPermit.Success(ctx))
	})

	t.Run("UpdateDeclineAndError", func(t *testing.T) {
		t.Parallel()
		tb := setup(t)
		before := state(t, tb.b)
		boom := errors.New("boom")
		got, err := tb.store.Update(ctx, tb.name, func(cur breaker.Snapshot) (breaker.Snapshot, bool, error) {
			cur.ConsecutiveFailures = 99
			return cur, true, boom
		})
		require.ErrorIs(t, err, boom)
		require.Equal(t, before, got)
		got, err = tb.store.Update(ctx, tb.name, func(cur breaker.Snapshot) (breaker.Snapshot, bool, error) {
			cur.ConsecutiveFailures = 99
			return cur, false, nil
		})
		require.NoError(t, err)
		require.Equal(t, before, got)
		require.Equal(t, before, state(t, tb.b))
	})
}
