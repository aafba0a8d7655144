package breaker_test

import (
	"context"
	"testing"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/provision"
)

// BenchmarkAcquireSuccessClosed measures one Acquire+Success on a closed
// breaker. "shared" runs on a KVStore against a real embedded JetStream
// server: its fast path reads the watched copy, so it should cost about what
// "local" costs, far below "kv_get_round_trip" (one KV read per op, the
// cost a naive shared breaker would pay at least once per call).
func BenchmarkAcquireSuccessClosed(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, br *breaker.Breaker) {
		b.Helper()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			p, err := br.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Success(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("local", func(b *testing.B) {
		br, err := breaker.New("bench", breaker.NewLocalStore(), breaker.Settings{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, br)
	})

	srv := natstest.StartProvisioned(b, provision.Config{})
	b.Run("shared", func(b *testing.B) {
		st, _ := newKVStore(b, srv)
		br, err := breaker.New("bench", st, breaker.Settings{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := br.Snapshot(ctx); err != nil { // start the watcher
			b.Fatal(err)
		}
		run(b, br)
	})

	b.Run("kv_get_round_trip", func(b *testing.B) {
		_, kv := openKV(b, srv)
		if _, err := kv.Put(ctx, layout.BreakerKey("bench-get"), []byte("x")); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := kv.Get(ctx, layout.BreakerKey("bench-get")); err != nil {
				b.Fatal(err)
			}
		}
	})
}
