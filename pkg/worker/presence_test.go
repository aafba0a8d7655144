package worker_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

// sickResource reports itself degraded.
type sickResource struct{ kvstore.ResourceDefaults }

func (sickResource) Health(context.Context) kvstore.HealthStatus {
	return kvstore.Degraded("slow disk")
}

// workerInfo returns the live entry of worker id, failing the test on any
// error but not-found (nil).
func workerInfo(t *testing.T, cl *client.Client, id string) *client.WorkerInfo {
	t.Helper()
	info, err := cl.Worker(context.Background(), id)
	if err != nil {
		require.ErrorIs(t, err, client.ErrWorkerNotFound)
		return nil
	}
	return info
}

func TestPresence(t *testing.T) {
	t.Parallel()

	t.Run("a started worker is listed, refreshed, marked stopping while it drains, and deleted on stop", func(t *testing.T) {
		t.Parallel()
		release, started := make(chan struct{}), make(chan struct{}, 1)
		block := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
			started <- struct{}{}
			<-release
			return fsm.Next("done"), nil
		})
		// The id is not a subject token, so its key is encoded.
		const id = "host.example.com/presence"
		b := setup(t, worker.Config{ID: id, Concurrency: 8, Queues: []string{"default", "bulk"},
			PresenceInterval: 100 * time.Millisecond}, oneTask("block", block, fsm.TaskConfig{}))

		// Start put the entry before returning.
		list, err := b.client.Workers(context.Background())
		require.NoError(t, err)
		require.Len(t, list, 1)
		first := list[0]
		host, _ := os.Hostname()
		require.Equal(t, id, first.ID)
		require.Equal(t, host, first.Hostname)
		require.Equal(t, os.Getpid(), first.PID)
		require.Equal(t, []string{"scripted"}, first.Kinds)
		require.Equal(t, []string{"default", "bulk"}, first.Queues)
		require.Equal(t, 8, first.Concurrency)
		require.Equal(t, 0, first.InFlight)
		require.Equal(t, client.WorkerHealthy, first.Health)
		require.Empty(t, first.HealthReason)
		require.Equal(t, 100*time.Millisecond, first.HeartbeatInterval)
		require.False(t, first.Stopping)
		require.NotZero(t, first.StartedAt)
		require.False(t, first.HeartbeatAt.Before(first.StartedAt))

		// The heartbeat refreshes the entry.
		natstest.WaitFor(t, 5*time.Second, "a newer heartbeat", func() bool {
			info := workerInfo(t, b.client, id)
			return info != nil && info.HeartbeatAt.After(first.HeartbeatAt)
		})

		// A running task is counted in flight.
		_, err = b.client.Trigger(awaitCtx(t), "block", &client.TriggerOpts{NoWait: true})
		require.NoError(t, err)
		natstest.Recv(t, started, 10*time.Second)
		natstest.WaitFor(t, 5*time.Second, "one task in flight", func() bool {
			info := workerInfo(t, b.client, id)
			return info != nil && info.InFlight == 1
		})

		// Stop marks the entry stopping while the task drains, then deletes it.
		stopped := make(chan error, 1)
		go func() { stopped <- b.worker.Stop(awaitCtx(t)) }()
		natstest.WaitFor(t, 5*time.Second, "the entry marked stopping", func() bool {
			info := workerInfo(t, b.client, id)
			return info != nil && info.Stopping
		})
		close(release)
		require.NoError(t, natstest.Recv(t, stopped, 10*time.Second))
		require.Nil(t, workerInfo(t, b.client, id), "deleted on stop")
		list, err = b.client.Workers(context.Background())
		require.NoError(t, err)
		require.Empty(t, list)
	})

	t.Run("the health of the worker's resources is published", func(t *testing.T) {
		t.Parallel()
		res := kvstore.NewResources(kvstore.ResourcesConfig{})
		res.Insert("db", sickResource{})
		b := setup(t, worker.Config{ID: "sick", Resources: res})
		info := workerInfo(t, b.client, "sick")
		require.NotNil(t, info)
		require.Equal(t, client.WorkerDegraded, info.Health)
		require.Equal(t, "db: slow disk", info.HealthReason)
		require.Equal(t, worker.PresenceIntervalDefault, info.HeartbeatInterval)
	})

	t.Run("tasks in flight are written within about a second, not a presence interval", func(t *testing.T) {
		t.Parallel()
		release, started := make(chan struct{}), make(chan struct{}, 1)
		block := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
			started <- struct{}{}
			<-release
			return fsm.Next("done"), nil
		})
		// The longest interval: the refresh ticker does not fire during
		// the test, so only the in-flight check can update the entry.
		b := setup(t, worker.Config{ID: "busy", PresenceInterval: worker.PresenceIntervalMax},
			oneTask("block", block, fsm.TaskConfig{}))
		var once sync.Once
		unblock := func() { once.Do(func() { close(release) }) }
		t.Cleanup(unblock) // a failed wait must not leave the task (and Stop) hanging
		require.Equal(t, 0, workerInfo(t, b.client, "busy").InFlight)
		_, err := b.client.Trigger(awaitCtx(t), "block", &client.TriggerOpts{NoWait: true})
		require.NoError(t, err)
		natstest.Recv(t, started, 10*time.Second)
		natstest.WaitFor(t, 10*time.Second, "one task in flight", func() bool {
			info := workerInfo(t, b.client, "busy")
			return info != nil && info.InFlight == 1
		})
		unblock()
		natstest.WaitFor(t, 10*time.Second, "no task in flight", func() bool {
			info := workerInfo(t, b.client, "busy")
			return info != nil && info.InFlight == 0
		})
	})

	t.Run("PresenceInterval -1 disables presence", func(t *testing.T) {
		t.Parallel()
		b := setup(t, worker.Config{ID: "hidden", PresenceInterval: -1})
		list, err := b.client.Workers(context.Background())
		require.NoError(t, err)
		require.Empty(t, list)
	})
}

func TestPresenceConfig(t *testing.T) {
	t.Parallel()
	nc, _ := natstest.Start(t).Connect(t)
	reg := &fsm.Registry{}
	fsm.Register[scripted](reg)
	long := string(make([]byte, protocol.MaxWorkerIDLen+1))
	tests := []struct {
		name    string
		cfg     worker.Config
		wantErr string // "" means valid
	}{
		{"default", worker.Config{}, ""},
		{"disabled", worker.Config{PresenceInterval: -1}, ""},
		{"minimum", worker.Config{PresenceInterval: worker.PresenceIntervalMin}, ""},
		{"maximum", worker.Config{PresenceInterval: worker.PresenceIntervalMax}, ""},
		{"below the minimum", worker.Config{PresenceInterval: time.Millisecond}, "PresenceInterval"},
		{"above the maximum", worker.Config{PresenceInterval: worker.PresenceIntervalMax + 1}, "PresenceInterval"},
		{"negative", worker.Config{PresenceInterval: -2}, "PresenceInterval"},
		{"id too long", worker.Config{ID: long}, "ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Registry = reg
			_, err := worker.New(nc, tc.cfg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "worker: "+tc.wantErr)
		})
	}
}

// TestPresenceSharedID checks that a worker warns when another live
// process writes the presence entry of its id (two workers given one -id).
func TestPresenceSharedID(t *testing.T) {
	t.Parallel()
	var logs natstest.LogBuffer
	const id = "shared-id"
	b := setup(t, worker.Config{ID: id, PresenceInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := b.js.KeyValue(ctx, layout.WorkersBucket(protocol.MustNames("")))
	require.NoError(t, err)
	// Another process, elsewhere, writes the entry of the same id.
	other := protocol.WorkerInfo{V: protocol.SchemaVersion, ID: id, Hostname: "elsewhere", PID: 4242, Health: protocol.WorkerHealthy,
		HeartbeatInterval: int64(time.Second), HeartbeatAt: time.Now().UnixNano(), StartedAt: time.Now().UnixNano()}
	data, err := wirecodec.Encode(&other)
	require.NoError(t, err)
	_, err = kv.Put(ctx, layout.WorkerKey(id), data)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "another worker runs with this worker's id")
	}, 20*time.Second, 20*time.Millisecond, "the worker's next heartbeat finds the other's entry: %s", logs.String())
	require.Contains(t, logs.String(), "other_host=elsewhere other_pid=4242")
	require.Equal(t, 1, strings.Count(logs.String(), "another worker runs with this worker's id"), "once a minute at most")
}
