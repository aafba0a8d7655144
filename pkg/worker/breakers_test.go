package worker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

func TestSharedBreakerInWorker(t *testing.T) {
	t.Parallel()
	clock := &manualClock{t: time.Now()}
	transitions := make(chan breaker.Transition, 16)
	var calls atomic.Int32
	var failing atomic.Bool
	script := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
		calls.Add(1)
		if failing.Load() {
			return fsm.Result{}, errors.New("dependency down")
		}
		return fsm.Next("done"), nil
	})
	policy := &breaker.Policy{FailureThreshold: 2, ResetTimeout: time.Minute, HalfOpenMaxCalls: 1}
	var set *worker.BreakerSet
	b := setupFunc(t, func(nc *nats.Conn, js jetstream.JetStream) worker.Config {
		kv, err := js.KeyValue(context.Background(), layout.BreakersBucket(protocol.MustNames("")))
		require.NoError(t, err)
		set, err = worker.NewSharedBreakers(nc, kv, worker.BreakersConfig{Clock: clock,
			OnTransitionFunc: func(tr breaker.Transition) { transitions <- tr }})
		require.NoError(t, err)
		t.Cleanup(func() { _ = set.Stop(context.Background()) })
		return worker.Config{Breakers: set}
	}, oneTask("guarded", script, fsm.TaskConfig{Retry: fsm.RetryFixed(3, 10*time.Millisecond), Breaker: "dep", BreakerPolicy: policy}))
	events := make(chan *nats.Msg, 16)
	sub, err := b.nc.ChanSubscribe(protocol.MustNames("").EventSubject(protocol.BreakerEventWorkflow, "dep", protocol.EventBreaker), events)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, b.nc.Flush())
	nextEvent := func() protocol.Event {
		t.Helper()
		var ev protocol.Event
		require.NoError(t, wirecodec.Decode(natstest.Recv(t, events, 10*time.Second).Data, &ev, 0))
		require.Equal(t, protocol.EventBreaker, ev.Type)
		require.Equal(t, "dep", ev.RunID)
		return ev
	}
	run := func(t *testing.T) (string, error) {
		t.Helper()
		id := "r" + nuid.Next()
		_, err := b.client.Run(awaitCtx(t), "guarded", &client.TriggerOpts{RunID: id})
		return id, err
	}
	kv, err := b.js.KeyValue(context.Background(), layout.BreakersBucket(protocol.MustNames("")))
	require.NoError(t, err)

	// Failures trip the breaker mid-retry; the next attempt is not made and
	// the run fails with the raw CircuitOpen (cano: no retry slot consumed).
	failing.Store(true)
	id, err := run(t)
	require.ErrorIs(t, err, fsm.ErrCircuitOpen)
	require.NotErrorIs(t, err, fsm.ErrRetryExhausted)
	require.EqualValues(t, 2, calls.Load(), "threshold 2: two attempts ran, the third was refused")
	require.Len(t, b.log.ends(id), 2)
	var se *fsm.StateError
	require.ErrorAs(t, err, &se)
	require.EqualValues(t, 2, se.Attempt, "the refused third attempt is not counted")
	tr := natstest.Recv(t, transitions, 10*time.Second)
	require.Equal(t, breaker.StateClosed, tr.From)
	require.Equal(t, breaker.StateOpen, tr.To)
	ev := nextEvent()
	require.Equal(t, string(protocol.BreakerOpen), ev.State)

	// Open: calls fail fast, the task never runs.
	for range 3 {
		id, err = run(t)
		require.ErrorIs(t, err, fsm.ErrCircuitOpen)
		require.Empty(t, b.log.starts(id), "no attempt made while open")
		require.ErrorAs(t, err, &se)
		require.Zero(t, se.Attempt)
		require.NotContains(t, err.Error(), "attempt", "no attempt to name")
		rec, err := b.client.Get(awaitCtx(t), id)
		require.NoError(t, err)
		require.Zero(t, rec.History[0].Attempts)
		require.Zero(t, rec.Totals.Attempts)
	}
	require.EqualValues(t, 2, calls.Load())
	states, err := b.client.Breakers(awaitCtx(t))
	require.NoError(t, err)
	require.Len(t, states, 1)
	require.Equal(t, client.BreakerOpen, states[0].State)
	require.Equal(t, 2, states[0].FailureThreshold)

	// After the cool-down the next call is the probe; its success closes it.
	clock.Advance(time.Minute + time.Second)
	failing.Store(false)
	_, err = run(t)
	require.NoError(t, err)
	require.EqualValues(t, 3, calls.Load())
	for _, want := range [][2]breaker.State{{breaker.StateOpen, breaker.StateHalfOpen}, {breaker.StateHalfOpen, breaker.StateClosed}} {
		tr := natstest.Recv(t, transitions, 10*time.Second)
		require.Equal(t, want, [2]breaker.State{tr.From, tr.To})
		require.Equal(t, string(want[1]), nextEvent().State)
	}
	states, err = b.client.Breakers(awaitCtx(t))
	require.NoError(t, err)
	require.Equal(t, client.BreakerClosed, states[0].State)

	// Closed fast path: successes write nothing to the bucket.
	before, err := kv.Get(context.Background(), layout.BreakerKey("dep"))
	require.NoError(t, err)
	for range 10 {
		_, err = run(t)
		require.NoError(t, err)
	}
	after, err := kv.Get(context.Background(), layout.BreakerKey("dep"))
	require.NoError(t, err)
	require.Equal(t, before.Revision(), after.Revision(), "a closed breaker's successes do not touch the bucket")

	// Trip it again, then reset it from the client.
	failing.Store(true)
	_, err = run(t)
	require.ErrorIs(t, err, fsm.ErrCircuitOpen)
	require.Equal(t, string(protocol.BreakerOpen), nextEvent().State)
	require.NoError(t, b.client.ResetBreaker(awaitCtx(t), "dep"))
	ev = nextEvent()
	require.Equal(t, "reset", ev.Detail)
	require.Equal(t, string(protocol.BreakerClosed), ev.State)
	dep, ok := set.Breaker("dep")
	require.True(t, ok)
	natstest.WaitFor(t, 10*time.Second, "the worker sees the reset", func() bool {
		s, err := dep.Snapshot(context.Background())
		return err == nil && (s.State == breaker.StateClosed || s.State == "")
	})
	failing.Store(false)
	_, err = run(t)
	require.NoError(t, err)

	err = b.client.ResetBreaker(awaitCtx(t), "nope")
	require.ErrorIs(t, err, client.ErrBreakerNotFound)
	require.ErrorIs(t, err, breaker.ErrNotFound)
}

func TestDisableBreakers(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	script := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
		calls.Add(1)
		return fsm.Result{}, errors.New("down")
	})
	b := setup(t, worker.Config{DisableBreakers: true}, oneTask("unguarded", script, fsm.TaskConfig{Retry: fsm.RetryFixed(2, time.Millisecond),
		Breaker: "dep", BreakerPolicy: &breaker.Policy{FailureThreshold: 1}}))
	_, err := b.client.Run(awaitCtx(t), "unguarded", nil)
	require.ErrorIs(t, err, fsm.ErrRetryExhausted, "no breaker: every attempt runs")
	require.EqualValues(t, 3, calls.Load())
	states, err := b.client.Breakers(awaitCtx(t))
	require.NoError(t, err)
	require.Empty(t, states)
}

func TestLocalBreakers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &manualClock{t: time.Now()}
	set, err := worker.NewLocalBreakers(nil, worker.BreakersConfig{Clock: clock})
	require.NoError(t, err)
	policy := &protocol.BreakerPolicy{FailureThreshold: 2, ResetTimeout: int64(time.Second)}

	p, err := set.Acquire(ctx, "local", policy)
	require.NoError(t, err)
	p.Failure(ctx)
	// A permit never reported counts as a failure once released.
	p, err = set.Acquire(ctx, "local", policy)
	require.NoError(t, err)
	p.(interface{ Release() }).Release()

	_, err = set.Acquire(ctx, "local", policy)
	require.ErrorIs(t, err, fsm.ErrCircuitOpen)
	require.ErrorIs(t, err, breaker.ErrOpen)

	clock.Advance(time.Second)
	probe, err := set.Acquire(ctx, "local", policy)
	require.NoError(t, err)
	_, err = set.Acquire(ctx, "local", policy)
	require.ErrorIs(t, err, breaker.ErrHalfOpenExhausted, "one probe at a time")
	require.ErrorIs(t, err, fsm.ErrCircuitOpen)
	probe.Success(ctx)
	p, err = set.Acquire(ctx, "local", policy)
	require.NoError(t, err)
	p.Success(ctx)
	b, ok := set.Breaker("local")
	require.True(t, ok)
	s, err := b.Snapshot(ctx)
	require.NoError(t, err)
	require.Equal(t, breaker.StateClosed, s.State)
}
