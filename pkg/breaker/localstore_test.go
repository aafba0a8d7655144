package breaker_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/breaker"
)

func TestLocalStore(t *testing.T) {
	t.Parallel()
	runStoreTests(t, func(*testing.T) breaker.Store { return breaker.NewLocalStore() })
}

func TestLocalStoreZeroValue(t *testing.T) {
	t.Parallel()
	var s breaker.LocalStore
	b, err := breaker.New("x", &s, breaker.Settings{})
	require.NoError(t, err)
	p, err := b.Acquire(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Failure(context.Background()))
	snap, err := s.Load(context.Background(), "x")
	require.NoError(t, err)
	require.Equal(t, 1, snap.ConsecutiveFailures)
}

// TestLocalStress hits one breaker from many goroutines and checks exact
// counts: no failure is lost and the breaker trips exactly once.
func TestLocalStress(t *testing.T) {
	t.Parallel()
	const goroutines, perG = 8, 500
	ctx := context.Background()

	t.Run("CountsEveryFailure", func(t *testing.T) {
		t.Parallel()
		b, err := breaker.New("x", breaker.NewLocalStore(), breaker.Settings{
			Policy: breaker.Policy{FailureThreshold: goroutines*perG + 1},
		})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for range perG {
					p, err := b.Acquire(ctx)
					if err != nil {
						panic(err)
					}
					_ = p.Failure(ctx)
				}
			})
		}
		wg.Wait()
		s, err := b.Snapshot(ctx)
		require.NoError(t, err)
		require.Equal(t, goroutines*perG, s.ConsecutiveFailures)
		require.Equal(t, breaker.StateClosed, s.State)
	})

	t.Run("TripsOnceAndAdmitsOneProbe", func(t *testing.T) {
		t.Parallel()
		clock := newManualClock()
		rec := &recorder{}
		b, err := breaker.New("x", breaker.NewLocalStore(), breaker.Settings{
			Policy: breaker.Policy{FailureThreshold: goroutines * perG},
			Clock:  clock, OnTransitionFunc: rec.record,
		})
		require.NoError(t, err)
		permits := make([]*breaker.Permit, goroutines*perG)
		for i := range permits {
			permits[i], err = b.Acquire(ctx)
			require.NoError(t, err)
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for _, p := range permits[g*perG : (g+1)*perG] {
					_ = p.Failure(ctx)
				}
			})
		}
		wg.Wait()
		require.Equal(t, []string{"closed>open"}, rec.edges())

		clock.Advance(breaker.ResetTimeoutDefault)
		var admitted, rejected sync.Map
		for g := range goroutines {
			wg.Go(func() {
				p, err := b.Acquire(ctx)
				if err == nil {
					admitted.Store(g, p)
				} else {
					rejected.Store(g, err)
				}
			})
		}
		wg.Wait()
		n := 0
		admitted.Range(func(any, any) bool { n++; return true })
		require.Equal(t, 1, n)
		rejected.Range(func(_, v any) bool {
			require.ErrorIs(t, v.(error), breaker.ErrOpen)
			return true
		})
	})
}
