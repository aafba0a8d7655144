package breaker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/breakerkv"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

const waitTimeout = 10 * time.Second

// openKV connects to s and opens the breakers bucket.
func openKV(t testing.TB, s *natstest.Server) (*nats.Conn, jetstream.KeyValue) {
	t.Helper()
	nc, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, layout.BreakersBucket(protocol.MustNames("")))
	if err != nil {
		t.Fatalf("open breakers bucket: %v", err)
	}
	return nc, kv
}

// newKVStore opens a KVStore on its own connection, stopped in t.Cleanup.
func newKVStore(t testing.TB, s *natstest.Server) (*breakerkv.KVStore, *nats.Conn) {
	t.Helper()
	nc, kv := openKV(t, s)
	st, err := breakerkv.NewKVStore(kv, breakerkv.KVStoreConfig{})
	if err != nil {
		t.Fatalf("new kv store: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = st.Stop(ctx)
	})
	return st, nc
}

func TestKVStore(t *testing.T) {
	t.Parallel()
	s := natstest.StartProvisioned(t, provision.Config{})
	runStoreTests(t, func(t *testing.T) breaker.Store {
		st, _ := newKVStore(t, s)
		return st
	})
}

// TestSharedBreaker runs three breakers with one name on three connections
// (three worker processes) against one real JetStream server.
func TestSharedBreaker(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	ctx := context.Background()
	policy := breaker.Policy{FailureThreshold: 5, ResetTimeout: 30 * time.Second, HalfOpenMaxCalls: 1}

	type testBundle struct {
		bs    [3]*breaker.Breaker
		conns [3]*nats.Conn
		clock *manualClock
		rec   *recorder
		admin jetstream.KeyValue
		name  string
	}
	setup := func(t *testing.T, p breaker.Policy) *testBundle {
		t.Helper()
		tb := &testBundle{clock: newManualClock(), rec: &recorder{}, name: uniqueName()}
		for i := range tb.bs {
			st, nc := newKVStore(t, srv)
			b, err := breaker.New(tb.name, st, breaker.Settings{Policy: p, Clock: tb.clock, OnTransitionFunc: tb.rec.record})
			require.NoError(t, err)
			tb.bs[i], tb.conns[i] = b, nc
			_, err = b.Snapshot(ctx) // start the watcher (creates the key)
			require.NoError(t, err)
		}
		_, tb.admin = openKV(t, srv)
		return tb
	}
	// waitState waits until every breaker's local copy shows want.
	waitState := func(t *testing.T, tb *testBundle, want breaker.State) {
		t.Helper()
		for _, b := range tb.bs {
			natstest.WaitFor(t, waitTimeout, "local copy "+string(want), func() bool {
				s, err := b.Snapshot(ctx)
				return err == nil && s.State == want
			})
		}
	}
	// stored reads tb's breaker through List. The subtests share one bucket
	// and write to it in parallel; a key listing taken while other keys
	// change can end before every key is seen (nats.go's watcher counts the
	// newer values of keys it has already delivered toward the initial
	// values), so a missing name is looked for again, within a deadline.
	stored := func(t *testing.T, tb *testBundle) protocol.BreakerState {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			all, err := breakerkv.List(ctx, tb.admin)
			require.NoError(t, err)
			for _, st := range all {
				if st.Name == tb.name {
					return st
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("breaker %s not listed", tb.name)
			}
		}
	}
	trip := func(t *testing.T, tb *testBundle) {
		t.Helper()
		// Five failures spread over the three processes: 2 + 2 + 1.
		for i, n := range []int{2, 2, 1} {
			for range n {
				p, err := tb.bs[i].Acquire(ctx)
				require.NoError(t, err)
				require.NoError(t, p.Failure(ctx))
			}
		}
	}

	t.Run("FailuresAcrossProcessesTripAll", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, policy)
		for i, n := range []int{2, 2} {
			for range n {
				p, err := tb.bs[i].Acquire(ctx)
				require.NoError(t, err)
				require.NoError(t, p.Failure(ctx))
			}
		}
		require.Equal(t, uint32(4), stored(t, tb).ConsecutiveFailures)
		require.Equal(t, protocol.BreakerClosed, stored(t, tb).Phase)
		p, err := tb.bs[2].Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, p.Failure(ctx))
		require.Equal(t, protocol.BreakerOpen, stored(t, tb).Phase)

		waitState(t, tb, breaker.StateOpen)
		for _, b := range tb.bs {
			_, err := b.Acquire(ctx)
			require.ErrorIs(t, err, breaker.ErrOpen)
		}
		require.Equal(t, []string{"closed>open"}, tb.rec.edges(), "reported once, by the process that tripped it")
		require.Equal(t, stored(t, tb).Epoch, tb.rec.transitions()[0].Epoch)
		e, err := tb.admin.Get(ctx, layout.BreakerKey(tb.name))
		require.NoError(t, err)
		require.Equal(t, e.Revision(), stored(t, tb).Epoch, "the epoch is the KV revision of the tripping write")
	})

	t.Run("ExactlyOneProbeClusterWideThenSuccessCloses", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, policy)
		trip(t, tb)
		waitState(t, tb, breaker.StateOpen)
		tb.clock.Advance(policy.ResetTimeout)

		const perProcess = 8
		var (
			admitted atomic.Int32
			probe    atomic.Pointer[breaker.Permit]
			wg       sync.WaitGroup
			start    = make(chan struct{})
			errs     = make(chan error, 3*perProcess)
		)
		for _, b := range tb.bs {
			for range perProcess {
				wg.Go(func() {
					<-start
					p, err := b.Acquire(ctx)
					if err != nil {
						errs <- err
						return
					}
					admitted.Add(1)
					probe.Store(p)
				})
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		require.Equal(t, int32(1), admitted.Load(), "exactly one probe cluster-wide")
		n := 0
		for err := range errs {
			require.ErrorIs(t, err, breaker.ErrOpen)
			n++
		}
		require.Equal(t, 3*perProcess-1, n)
		st := stored(t, tb)
		require.Equal(t, protocol.BreakerHalfOpen, st.Phase)
		require.Equal(t, uint32(1), st.HalfOpenInFlight)

		require.NoError(t, probe.Load().Success(ctx))
		require.Equal(t, protocol.BreakerClosed, stored(t, tb).Phase)
		waitState(t, tb, breaker.StateClosed)
		for _, b := range tb.bs {
			p, err := b.Acquire(ctx)
			require.NoError(t, err)
			require.NoError(t, p.Success(ctx))
		}
		require.Equal(t, []string{"closed>open", "open>half_open", "half_open>closed"}, tb.rec.edges())
	})

	t.Run("StaleOutcomesFromAnotherProcessIgnored", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, policy)
		slowOK, err := tb.bs[0].Acquire(ctx) // straddles the trip
		require.NoError(t, err)
		slowFail, err := tb.bs[0].Acquire(ctx)
		require.NoError(t, err)
		trip(t, tb)
		waitState(t, tb, breaker.StateOpen)
		tb.clock.Advance(policy.ResetTimeout)
		probe, err := tb.bs[1].Acquire(ctx)
		require.NoError(t, err)
		require.True(t, probe.Probe())
		waitState(t, tb, breaker.StateHalfOpen)

		require.NoError(t, slowOK.Success(ctx))
		require.NoError(t, slowFail.Failure(ctx))
		st := stored(t, tb)
		require.Equal(t, protocol.BreakerHalfOpen, st.Phase, "stale outcomes neither close nor re-open it")
		require.Equal(t, probe.Epoch(), st.Epoch)

		require.NoError(t, probe.Success(ctx))
		require.Equal(t, protocol.BreakerClosed, stored(t, tb).Phase)
	})

	t.Run("ClosedFastPathSendsNothing", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, policy)
		before := tb.conns[0].Stats()
		for range 1000 {
			p, err := tb.bs[0].Acquire(ctx)
			require.NoError(t, err)
			require.NoError(t, p.Success(ctx))
		}
		after := tb.conns[0].Stats()
		require.Equal(t, before.OutMsgs, after.OutMsgs, "no message sent while closed")

		// The first success after a failure writes once to reset the count.
		p, err := tb.bs[0].Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, p.Failure(ctx))
		p, err = tb.bs[0].Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, p.Success(ctx))
		require.Zero(t, stored(t, tb).ConsecutiveFailures)
	})

	t.Run("ResetAndList", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, policy)
		trip(t, tb)
		st := stored(t, tb)
		require.Equal(t, protocol.BreakerOpen, st.Phase)
		require.Equal(t, wirecodec.BreakerPolicyToWire(policy), st.Policy)
		waitState(t, tb, breaker.StateOpen)
		inFlight, err := tb.bs[0].Acquire(ctx)
		require.ErrorIs(t, err, breaker.ErrOpen)
		require.Nil(t, inFlight)

		require.NoError(t, breakerkv.Reset(ctx, tb.admin, tb.name))
		after := stored(t, tb)
		require.Equal(t, protocol.BreakerClosed, after.Phase)
		require.Greater(t, after.Epoch, st.Epoch)
		require.Equal(t, wirecodec.BreakerPolicyToWire(policy), after.Policy, "policy kept")
		waitState(t, tb, breaker.StateClosed)
		for _, b := range tb.bs {
			p, err := b.Acquire(ctx)
			require.NoError(t, err)
			require.NoError(t, p.Success(ctx))
		}

		err = breakerkv.Reset(ctx, tb.admin, "no-such-breaker")
		require.ErrorIs(t, err, breaker.ErrNotFound)
	})

	t.Run("StressExactCounts", func(t *testing.T) {
		t.Parallel()
		const perProcess, perG = 4, 10
		total := 3 * perProcess * perG
		for _, tc := range []struct {
			name      string
			threshold int
			wantPhase protocol.BreakerPhase
		}{
			{name: "below threshold: every failure counted", threshold: total + 1, wantPhase: protocol.BreakerClosed},
			{name: "at threshold: trips exactly once", threshold: total, wantPhase: protocol.BreakerOpen},
		} {
			tb := setup(t, breaker.Policy{FailureThreshold: tc.threshold})
			// Acquire every permit first (closed: no I/O), then report all
			// failures concurrently from 12 goroutines over 3 connections.
			var wg sync.WaitGroup
			errs := make(chan error, total)
			for _, b := range tb.bs {
				for range perProcess {
					permits := make([]*breaker.Permit, perG)
					for i := range permits {
						p, err := b.Acquire(ctx)
						require.NoError(t, err)
						permits[i] = p
					}
					wg.Go(func() {
						for _, p := range permits {
							if err := p.Failure(ctx); err != nil {
								errs <- err
							}
						}
					})
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err, tc.name)
			}
			st := stored(t, tb)
			require.Equal(t, tc.wantPhase, st.Phase, tc.name)
			if tc.wantPhase == protocol.BreakerClosed {
				require.Equal(t, uint32(total), st.ConsecutiveFailures, tc.name)
				require.Empty(t, tb.rec.edges(), tc.name)
			} else {
				require.Equal(t, []string{"closed>open"}, tb.rec.edges(), tc.name)
			}
		}
	})

	t.Run("DeletedKeyIsRecreatedAsNewSession", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, policy)
		old, err := tb.bs[0].Acquire(ctx)
		require.NoError(t, err)
		for range 2 {
			p, err := tb.bs[0].Acquire(ctx)
			require.NoError(t, err)
			require.NoError(t, p.Failure(ctx))
		}
		require.NoError(t, tb.admin.Delete(ctx, layout.BreakerKey(tb.name)))
		// Once the watcher sees the delete, the next use recreates the key.
		natstest.WaitFor(t, waitTimeout, "recreated", func() bool {
			s, err := tb.bs[0].Snapshot(ctx)
			return err == nil && s.Epoch > old.Epoch()
		})
		st := stored(t, tb)
		require.Equal(t, protocol.BreakerClosed, st.Phase)
		require.Zero(t, st.ConsecutiveFailures)
		require.NoError(t, old.Failure(ctx), "stale permit from before the delete")
		require.Zero(t, stored(t, tb).ConsecutiveFailures)
	})

	t.Run("StopThenErrClosed", func(t *testing.T) {
		t.Parallel()
		st, _ := newKVStore(t, srv)
		b, err := breaker.New(uniqueName(), st, breaker.Settings{})
		require.NoError(t, err)
		_, err = b.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, st.Stop(ctx))
		require.NoError(t, st.Stop(ctx), "second Stop is safe")
		_, err = b.Acquire(ctx)
		require.ErrorIs(t, err, breaker.ErrClosed)
	})

	t.Run("InvalidName", func(t *testing.T) {
		t.Parallel()
		st, _ := newKVStore(t, srv)
		b, err := breaker.New("has.dot", st, breaker.Settings{})
		require.NoError(t, err)
		_, err = b.Acquire(ctx)
		require.ErrorIs(t, err, protocol.ErrInvalidName)
	})
}

func TestListEmpty(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	_, kv := openKV(t, srv)
	all, err := breakerkv.List(context.Background(), kv)
	require.NoError(t, err)
	require.Empty(t, all)
}
