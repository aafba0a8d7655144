package coordinator_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

type retentionBundle struct {
	cl  *client.Client
	js  jetstream.JetStream
	ctx context.Context
}

func setupRetention(t *testing.T, retention time.Duration) *retentionBundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg,
		Workflows: []worker.Definer{demo.OneTask(), demo.Sleepy(time.Hour)}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() {
		// The sleepy task is still running: a bounded stop hands it back.
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = w.Stop(sctx)
	})
	co, err := coordinator.New(nc, coordinator.Config{Shards: 4, RunRetention: retention})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	return &retentionBundle{cl: cl, js: js, ctx: ctx}
}

// TestFinishedRunRecordExpires: with a 2 s run retention, a finished run's
// record disappears (client.Get says the run is not found, and why that may
// be), while a running run's record stays.
func TestFinishedRunRecordExpires(t *testing.T) {
	t.Parallel()
	b := setupRetention(t, 2*time.Second)
	running, err := b.cl.Trigger(b.ctx, demo.SleepyName, nil)
	require.NoError(t, err)
	out, err := b.cl.Run(b.ctx, demo.OneTaskName, nil)
	require.NoError(t, err)
	rec, err := b.cl.Get(b.ctx, out.ID)
	require.NoError(t, err, "the record is there right after the run ended")
	require.Equal(t, client.RunCompleted, rec.Status)
	natstest.WaitFor(t, 30*time.Second, "the finished run's record to expire", func() bool {
		_, err := b.cl.Get(b.ctx, out.ID)
		if err == nil {
			return false
		}
		require.ErrorIs(t, err, client.ErrNotFound)
		require.ErrorContains(t, err, "record has expired")
		return true
	})
	rec, err = b.cl.Get(b.ctx, running)
	require.NoError(t, err, "a running run's record stays")
	require.Equal(t, client.RunRunning, rec.Status)
	list, err := b.cl.List(b.ctx, nil)
	require.NoError(t, err)
	require.Len(t, list, 1, "List leaves the expired record out")
}

// TestRunRetentionKeep: -1 keeps finished records (no TTL on the final
// write).
func TestRunRetentionKeep(t *testing.T) {
	t.Parallel()
	b := setupRetention(t, -1)
	out, err := b.cl.Run(b.ctx, demo.OneTaskName, nil)
	require.NoError(t, err)
	_, err = b.cl.Get(b.ctx, out.ID)
	require.NoError(t, err)
}

func TestRunRetentionValidate(t *testing.T) {
	t.Parallel()
	nc, _ := natstest.Start(t).Connect(t)
	for _, tc := range []struct {
		name string
		d    time.Duration
		ok   bool
	}{
		{"default", 0, true},
		{"keep", -1, true},
		{"one second", time.Second, true},
		{"below a second", 500 * time.Millisecond, false},
		{"other negative", -2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := coordinator.New(nc, coordinator.Config{RunRetention: tc.d})
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "RunRetention")
		})
	}
}

// TestRunRecordBytes measures the runs bucket's stored bytes per retained
// record of a finished one-task run (a figure, not an assertion).
func TestRunRecordBytes(t *testing.T) {
	t.Parallel()
	b := setupRetention(t, 0)
	const runs = 300
	for i := 0; i < runs; i++ {
		_, err := b.cl.Run(b.ctx, demo.OneTaskName, nil)
		require.NoError(t, err)
	}
	st, err := b.js.Stream(b.ctx, "KV_"+layout.RunsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	info := st.CachedInfo().State
	require.EqualValues(t, runs, info.Msgs, "one message per retained record")
	t.Logf("runs bucket: %d records, %d bytes stored, %d bytes per finished one-task run record",
		info.Msgs, info.Bytes, info.Bytes/info.Msgs)
}

// TestScheduledRecordOutlastsMaxAge: a run scheduled further ahead than the
// runs bucket keeps records (here 2 s) is still there when its start comes,
// and runs: its record is written with no TTL of its own until it starts.
func TestScheduledRecordOutlastsMaxAge(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{RunsMaxAge: 2 * time.Second})
	nc, _ := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{demo.OneTask()}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 4, Provision: &provision.Config{RunsMaxAge: 2 * time.Second}})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	at := time.Now().Add(5 * time.Second)
	id, err := cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{StartAt: at, IdempotencyKey: "later"})
	require.NoError(t, err)
	run, err := cl.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, run.Status)
	got, err := cl.Get(ctx, id)
	require.NoError(t, err)
	require.True(t, got.StartAt.Equal(at))
	require.False(t, got.History[0].Entered.Before(at))
}
