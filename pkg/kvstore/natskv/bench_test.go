package natskv_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
)

// BenchmarkStore measures Put, Get and Append per second on the KV store
// beside raw JetStream KV Put and Get on the same server in the same run,
// and on the memory store.
//
//	go test -run '^$' -bench Store ./pkg/kvstore/natskv
func BenchmarkStore(b *testing.B) {
	srv := natstest.Start(b)
	env := &kvEnv{srv: srv}
	_, env.js = srv.Connect(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)
	s := env.newStore(b, natskv.Config{})
	raw, err := env.js.KeyValue(ctx, "store_"+strconv.FormatInt(env.n.Load(), 10))
	require.NoError(b, err)
	value := make([]byte, 128)
	item := []byte{0x01}

	opsPerSec := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	}
	run := func(name string, op func(i int) error) {
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if err := op(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			opsPerSec(b)
		})
	}

	require.NoError(b, s.Put(ctx, "bench.get", value))
	run("raw-kv/Put", func(i int) error { _, err := raw.Put(ctx, "bench.raw", value); return err })
	run("raw-kv/Get", func(i int) error { _, err := raw.Get(ctx, "bench.get"); return err })
	run("kv/Put", func(i int) error { return s.Put(ctx, "bench.put", value) })
	run("kv/Get", func(i int) error { _, err := s.Get(ctx, "bench.get"); return err })
	// A fresh key every 100 items keeps the array (and the round trips) small.
	run("kv/Append", func(i int) error { return s.Append(ctx, "bench.append."+strconv.Itoa(i/100), item) })
	b.Run("kv/AppendParallel", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if err := s.Append(ctx, "bench.parallel", item); err != nil {
					b.Error(err)
					return
				}
			}
		})
		opsPerSec(b)
	})

	m := kvstore.NewMemory()
	require.NoError(b, m.Put(ctx, "bench.get", value))
	run("memory/Put", func(i int) error { return m.Put(ctx, "bench.put", value) })
	run("memory/Get", func(i int) error { _, err := m.Get(ctx, "bench.get"); return err })
	run("memory/Append", func(i int) error { return m.Append(ctx, "bench.append."+strconv.Itoa(i/100), item) })
}
