package client_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// startWorker starts a worker hosting the step kind on nc; it is stopped
// in t.Cleanup.
func startWorker(t *testing.T, nc *nats.Conn, cfg worker.Config) *worker.Worker {
	t.Helper()
	reg := &fsm.Registry{}
	fsm.Register[step](reg)
	cfg.Registry = reg
	cfg.Logger = slog.New(slog.DiscardHandler)
	w, err := worker.New(nc, cfg)
	require.NoError(t, err)
	require.NoError(t, w.Start(awaitCtx(t)))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

func workerIDs(t *testing.T, cl *client.Client) []string {
	t.Helper()
	list, err := cl.Workers(context.Background())
	require.NoError(t, err)
	ids := make([]string, 0, len(list))
	for _, w := range list {
		ids = append(ids, w.ID)
	}
	return ids
}

func TestWorkers(t *testing.T) {
	t.Parallel()

	t.Run("live workers are listed sorted by id until they stop", func(t *testing.T) {
		t.Parallel()
		srv := natstest.StartProvisioned(t, provision.Config{})
		nc, _ := srv.Connect(t)
		cl, err := client.New(nc, client.Config{})
		require.NoError(t, err)
		require.Empty(t, workerIDs(t, cl), "no worker yet")

		wc := startWorker(t, nc, worker.Config{ID: "w-c", Concurrency: 3})
		startWorker(t, nc, worker.Config{ID: "w.a", Queues: []string{"bulk"}})
		startWorker(t, nc, worker.Config{ID: "w-b"})
		require.Equal(t, []string{"w-b", "w-c", "w.a"}, workerIDs(t, cl))

		info, err := cl.Worker(context.Background(), "w.a")
		require.NoError(t, err)
		require.Equal(t, []string{"step"}, info.Kinds)
		require.Equal(t, []string{"bulk"}, info.Queues)
		require.Equal(t, worker.ConcurrencyDefault, info.Concurrency)
		require.Equal(t, client.WorkerHealthy, info.Health)

		require.NoError(t, wc.Stop(awaitCtx(t)))
		require.Equal(t, []string{"w-b", "w.a"}, workerIDs(t, cl))
		_, err = cl.Worker(context.Background(), "w-c")
		require.ErrorIs(t, err, client.ErrWorkerNotFound)
		_, err = cl.Worker(context.Background(), "never-started")
		require.ErrorIs(t, err, client.ErrWorkerNotFound)
		_, err = cl.Worker(context.Background(), "")
		require.ErrorIs(t, err, client.ErrWorkerNotFound)
	})

	t.Run("an entry that does not decode is left out of the list", func(t *testing.T) {
		t.Parallel()
		srv := natstest.StartProvisioned(t, provision.Config{})
		nc, js := srv.Connect(t)
		cl, err := client.New(nc, client.Config{})
		require.NoError(t, err)
		startWorker(t, nc, worker.Config{ID: "ok"})
		kv, err := js.KeyValue(context.Background(), layout.WorkersBucket(protocol.MustNames("")))
		require.NoError(t, err)
		_, err = kv.Put(context.Background(), "junk", []byte("not msgpack"))
		require.NoError(t, err)

		require.Equal(t, []string{"ok"}, workerIDs(t, cl))
		_, err = cl.Worker(context.Background(), "junk")
		require.ErrorIs(t, err, protocol.ErrMalformed)
	})

	t.Run("a worker that dies disappears when its entry's TTL runs out", func(t *testing.T) {
		t.Parallel()
		// A deployment whose workers bucket has a 1 s TTL instead of 30 s.
		const ttl = time.Second
		srv := natstest.StartProvisioned(t, provision.Config{Prefix: "short"})
		nc, js := srv.Connect(t)
		names := protocol.MustNames("short")
		ctx := awaitCtx(t)
		require.NoError(t, js.DeleteKeyValue(ctx, layout.WorkersBucket(names)))
		_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: layout.WorkersBucket(names), TTL: ttl})
		require.NoError(t, err)
		cl, err := client.New(nc, client.Config{Prefix: "short"})
		require.NoError(t, err)

		// The worker has its own connection, so it can die alone.
		wnc, _ := srv.Connect(t)
		startWorker(t, wnc, worker.Config{Prefix: "short", ID: "mortal", PresenceInterval: 100 * time.Millisecond})

		// Heartbeats keep the entry alive past the TTL.
		natstest.WaitFor(t, 10*time.Second, "the entry to outlive the TTL", func() bool {
			info, err := cl.Worker(context.Background(), "mortal")
			require.NoError(t, err)
			return info.HeartbeatAt.Sub(info.StartedAt) > ttl+ttl/2
		})

		// The worker's connection drops without a Stop: no delete, no more heartbeats.
		wnc.Close()
		natstest.WaitFor(t, 10*time.Second, "the dead worker to disappear", func() bool {
			return len(workerIDs(t, cl)) == 0
		})
		_, err = cl.Worker(context.Background(), "mortal")
		require.ErrorIs(t, err, client.ErrWorkerNotFound)
	})

	t.Run("an entry that expires while the list is read is left out and the list ends", func(t *testing.T) {
		t.Parallel()
		// The list reads the bucket with a watch: a consumer created with
		// four entries pending. The server delivers the three large ones,
		// then waits for the lister's flow-control reply (held back here)
		// before the last one, whose TTL runs out meanwhile. The watch never
		// delivers it, and nats.go's end-of-initial-values marker counts on
		// it: before the fix the list waited out its context.
		ctx := awaitCtx(t)
		late, err := wirecodec.Encode(&protocol.WorkerInfo{V: protocol.SchemaVersion, ID: "late"})
		require.NoError(t, err)
		cl, hold, expire := expiringBehindHold(t, ctx, layout.WorkersBucket(protocol.MustNames("exp")), layout.WorkerKey("late"), late)
		type listed struct {
			workers []client.WorkerInfo
			err     error
		}
		done := make(chan listed, 1)
		go func() {
			lctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			list, err := cl.Workers(lctx)
			done <- listed{list, err}
		}()
		natstest.Recv(t, hold.held, 10*time.Second) // the server now waits before "late"
		expire()
		got := natstest.Recv(t, done, 30*time.Second)
		require.NoError(t, got.err)
		require.Empty(t, got.workers, "the large entries do not decode; the late one expired before it was read")
	})
}
