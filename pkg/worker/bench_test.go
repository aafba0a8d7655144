package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// BenchmarkBreakerOverhead runs one-task workflows with a shared breaker
// configured ("guarded") and without ("plain") in the same process and
// server, alternating batches so both see the same machine load, and
// reports runs/s for each and the breaker's overhead in percent. The breaker
// stays closed, so its fast path reads the watched local copy: the test
// also checks the breaker's KV entry was never rewritten.
func BenchmarkBreakerOverhead(b *testing.B) {
	ok := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) { return fsm.Next("done"), nil })
	bd := setup(b, worker.Config{Concurrency: 512},
		oneTask("plain", ok, fsm.Minimal()),
		oneTask("guarded", ok, fsm.TaskConfig{Retry: fsm.RetryNone(), Breaker: "bench"}))
	names := protocol.MustNames("")
	ctx := context.Background()
	done := map[string]chan struct{}{"plain": make(chan struct{}, 4096), "guarded": make(chan struct{}, 4096)}
	for wf, ch := range done {
		sub, err := bd.nc.Subscribe(names.EventSubject(wf, "*", protocol.EventCompleted), func(*nats.Msg) { ch <- struct{}{} })
		require.NoError(b, err)
		b.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	batch := func(wf string, n int) time.Duration {
		start := time.Now()
		errs := make(chan error, 1)
		go func() {
			for range n {
				if _, err := bd.client.Trigger(ctx, wf, &client.TriggerOpts{NoWait: true}); err != nil {
					errs <- err
					return
				}
			}
		}()
		for range n {
			select {
			case <-done[wf]:
			case err := <-errs:
				b.Fatal(err)
			case <-time.After(time.Minute):
				b.Fatalf("%s: runs did not complete", wf)
			}
		}
		return time.Since(start)
	}
	// Warm up both paths (definitions, consumers, the breaker's watcher).
	batch("plain", 50)
	batch("guarded", 50)
	kv, err := bd.js.KeyValue(ctx, layout.BreakersBucket(names))
	require.NoError(b, err)
	before, err := kv.Get(ctx, layout.BreakerKey("bench"))
	require.NoError(b, err)

	const chunk = 200
	var plain, guarded time.Duration
	b.ResetTimer()
	for i, left := 0, b.N; left > 0; i, left = i+1, left-chunk {
		n := min(left, chunk)
		if i%2 == 0 { // alternate which goes first
			plain += batch("plain", n)
			guarded += batch("guarded", n)
		} else {
			guarded += batch("guarded", n)
			plain += batch("plain", n)
		}
	}
	b.StopTimer()
	after, err := kv.Get(ctx, layout.BreakerKey("bench"))
	require.NoError(b, err)
	require.Equal(b, before.Revision(), after.Revision(), "the closed breaker was never written")
	plainRate := float64(b.N) / plain.Seconds()
	guardedRate := float64(b.N) / guarded.Seconds()
	b.ReportMetric(plainRate, "plain-runs/s")
	b.ReportMetric(guardedRate, "guarded-runs/s")
	b.ReportMetric((plainRate-guardedRate)/plainRate*100, "overhead-%")
}

// BenchmarkSharedBreakerClosedPath measures what the worker adds per
// attempt for a closed shared breaker: Acquire, Success, Release. No broker
// round trip is involved (the KV store serves its watched copy).
func BenchmarkSharedBreakerClosedPath(b *testing.B) {
	srv := natstest.StartProvisioned(b, provision.Config{})
	nc, js := srv.Connect(b)
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, layout.BreakersBucket(protocol.MustNames("")))
	require.NoError(b, err)
	set, err := worker.NewSharedBreakers(nc, kv, worker.BreakersConfig{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = set.Stop(ctx) })
	p, err := set.Acquire(ctx, "hot", nil) // first use: starts the watcher
	require.NoError(b, err)
	p.Success(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := set.Acquire(ctx, "hot", nil)
			if err != nil {
				b.Error(err)
				return
			}
			p.Success(ctx)
			p.(interface{ Release() }).Release()
		}
	})
}
