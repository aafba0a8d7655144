package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/kvstoretest"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

func TestKVConformance(t *testing.T) {
	t.Parallel()
	env := newKVEnv(t)
	kvstoretest.RunStoreTests(t, func(t *testing.T) kvstore.Store {
		return env.newStore(t, natskv.Config{})
	})
}

// kvEnv is one embedded JetStream server on which each test gets its own
// store bucket, configured as provision configures the real one.
type kvEnv struct {
	srv *natstest.Server
	js  jetstream.JetStream
	n   atomic.Int64
}

func newKVEnv(t *testing.T) *kvEnv {
	t.Helper()
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	return &kvEnv{srv: srv, js: js}
}

// bucketConfig returns provision's store bucket configuration under name.
func bucketConfig(t testing.TB, name string) jetstream.KeyValueConfig {
	t.Helper()
	want := layout.StoreBucket(protocol.MustNames(""))
	for _, b := range provision.Buckets(provision.Config{Memory: true}) {
		if b.Bucket == want {
			b.Bucket = name
			return b
		}
	}
	t.Fatalf("provision has no bucket %s", want)
	return jetstream.KeyValueConfig{}
}

func (e *kvEnv) newStore(t testing.TB, cfg natskv.Config) *natskv.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bc := bucketConfig(t, fmt.Sprintf("store_%d", e.n.Add(1)))
	_, err := e.js.CreateKeyValue(ctx, bc)
	require.NoError(t, err)
	cfg.Bucket = bc.Bucket
	s, err := natskv.New(ctx, e.js, cfg)
	require.NoError(t, err)
	return s
}

func TestNewKV(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	_, js := srv.Connect(t)

	t.Run("DefaultsOpenTheProvisionedBucket", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		s, err := natskv.New(ctx, js, natskv.Config{})
		require.NoError(t, err)
		require.Equal(t, int(provision.MaxMsgSizeDefault)-natskv.HeaderRoom, s.MaxValueSize())
		require.NoError(t, s.Setup(ctx))
		require.True(t, s.Health(ctx).IsHealthy())
		require.NoError(t, kvstore.PutValue(ctx, s, "g.defaults", 1))
		kv, err := js.KeyValue(ctx, layout.StoreBucket(protocol.MustNames("")))
		require.NoError(t, err)
		_, err = kv.Get(ctx, "g.defaults")
		require.NoError(t, err)
	})
	t.Run("MissingBucket", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		_, err := natskv.New(ctx, js, natskv.Config{Prefix: "other"})
		require.ErrorIs(t, err, jetstream.ErrBucketNotFound)
		require.ErrorContains(t, err, "other_store")
	})
	t.Run("InvalidConfig", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		for _, tc := range []struct {
			name  string
			cfg   natskv.Config
			field string
		}{
			{"prefix", natskv.Config{Prefix: "a.b"}, "Config.Prefix"},
			{"timeout", natskv.Config{Timeout: -time.Second}, "Config.Timeout"},
			{"max value size negative", natskv.Config{MaxValueSize: -1}, "Config.MaxValueSize"},
			{"max value size too big", natskv.Config{MaxValueSize: 64 << 20}, "Config.MaxValueSize"},
			{"marker ttl", natskv.Config{DeleteMarkerTTL: time.Millisecond}, "Config.DeleteMarkerTTL"},
		} {
			_, err := natskv.New(ctx, js, tc.cfg)
			require.ErrorContains(t, err, tc.field, tc.name)
		}
	})
}

func TestKVAppendPastMaxValueSize(t *testing.T) {
	t.Parallel()
	env := newKVEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	s := env.newStore(t, natskv.Config{MaxValueSize: 100})

	item := make([]byte, 40)
	require.NoError(t, kvstore.AppendValue(ctx, s, "list", item)) // 1 + 42 bytes
	require.NoError(t, kvstore.AppendValue(ctx, s, "list", item)) // 1 + 84 bytes
	err := kvstore.AppendValue(ctx, s, "list", item)
	require.ErrorIs(t, err, kvstore.ErrValueTooLarge)
	require.ErrorContains(t, err, "maximum value size is 100")
	got, err := kvstore.GetAs[[][]byte](ctx, s, "list")
	require.NoError(t, err)
	require.Len(t, got, 2, "the refused item is not appended")
	require.NoError(t, kvstore.AppendValue(ctx, s, "list", 7), "a smaller item still fits")

	require.ErrorIs(t, s.Put(ctx, "k", make([]byte, 101)), kvstore.ErrValueTooLarge)
	require.NoError(t, s.Put(ctx, "k", make([]byte, 100)))
}

func TestKVDeleteLeavesExpiringMarker(t *testing.T) {
	t.Parallel()
	env := newKVEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	s := env.newStore(t, natskv.Config{DeleteMarkerTTL: time.Second})
	require.NoError(t, s.Put(ctx, "k", []byte("v")))
	require.NoError(t, s.Delete(ctx, "k"))

	kv, err := env.js.KeyValue(ctx, "store_1")
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Values(), "only the marker is left")
	natstest.WaitFor(t, 10*time.Second, "the delete marker to expire", func() bool {
		st, err := kv.Status(ctx)
		return err == nil && st.Values() == 0
	})
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestKVKeysWhileRewritten: Keys names every live key even while other
// keys are rewritten under it (the bucket's listing consumer alone skips a
// key whose message is replaced while it runs: after a broker crash a task
// may run twice, and its store writes then race the next state's Keys),
// and still leaves deleted keys out.
func TestKVKeysWhileRewritten(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	_, js := srv.Connect(t)
	ctx := testCtx(t)
	s, err := natskv.New(ctx, js, natskv.Config{})
	require.NoError(t, err)
	want := []string{"r.x.source_1", "r.x.source_2", "r.x.source_3"}
	for _, k := range append(want, "r.x.source_4") {
		require.NoError(t, s.Put(ctx, k, []byte("v")))
	}
	require.NoError(t, s.Delete(ctx, "r.x.source_4"))

	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			_ = s.Put(ctx, "r.x.source_1", []byte("v"))
			_ = s.Put(ctx, "r.x.source_2", []byte("v"))
		}
	}()
	defer func() { stop.Store(true); <-done }()
	for i := 0; i < 300; i++ {
		keys, err := s.Keys(ctx, "r.x.source_")
		require.NoError(t, err)
		require.Equal(t, want, keys, "call %d", i)
	}
}
