package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// TestRunIndexFollowsTheBucket: the index loads the runs present at start,
// then sees a new run, a status change, a deletion and an expired record
// through its watch.
func TestRunIndexFollowsTheBucket(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := js.KeyValue(ctx, layout.RunsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	t0 := time.Now()
	put := func(id, wf string, st protocol.RunStatus, created time.Time, opts ...jetstream.KVCreateOpt) {
		t.Helper()
		rec := &protocol.RunRecord{V: protocol.SchemaVersion, ID: id, Workflow: wf, DefVersion: "v1", Status: st,
			State: "s", Path: []string{"s"}, CreatedAt: created.UnixNano(), UpdatedAt: time.Now().UnixNano()}
		if st == protocol.RunFailed {
			rec.Error = &protocol.ErrorInfo{Category: protocol.ErrorCategory("workflow"), Message: "boom"}
		}
		data, err := wirecodec.Encode(rec)
		require.NoError(t, err)
		if len(opts) > 0 {
			_, err = kv.Create(ctx, layout.RunKey(id), data, opts...)
		} else {
			_, err = kv.Put(ctx, layout.RunKey(id), data)
		}
		require.NoError(t, err)
	}
	put("old-1", "wf_a", protocol.RunCompleted, t0.Add(-2*time.Second))
	put("old-2", "wf_b", protocol.RunRunning, t0.Add(-time.Second))
	_, err = kv.Put(ctx, "garbage", []byte("not msgpack"))
	require.NoError(t, err)

	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	ix, err := cl.WatchRuns(ctx, client.RunIndexConfig{})
	require.NoError(t, err)
	defer ix.Stop()
	select {
	case <-ix.Ready():
	case <-ctx.Done():
		t.Fatal("the index did not load")
	}
	ids := func(q client.RunQuery) []string {
		q.Limit = 100
		var out []string
		for _, r := range ix.Page(q).Runs {
			out = append(out, r.ID)
		}
		return out
	}
	require.Equal(t, []string{"old-2", "old-1"}, ids(client.RunQuery{}), "loaded, newest first, the bad record left out")
	waitIndex := func(what string, cond func() bool) {
		t.Helper()
		natstest.WaitFor(t, 10*time.Second, what, cond)
	}

	put("new-1", "wf_a", protocol.RunRunning, t0)
	waitIndex("a new run", func() bool { return len(ids(client.RunQuery{})) == 3 })
	require.Equal(t, []string{"new-1", "old-1"}, ids(client.RunQuery{Workflow: "wf_a"}))

	put("old-2", "wf_b", protocol.RunFailed, t0.Add(-time.Second))
	waitIndex("a status change", func() bool { return len(ids(client.RunQuery{Status: client.RunFailed})) == 1 })
	p := ix.Page(client.RunQuery{Status: client.RunFailed, Limit: 1})
	require.Equal(t, "old-2", p.Runs[0].ID)
	require.Equal(t, "boom", p.Runs[0].Error)
	require.False(t, p.Runs[0].EndedAt.IsZero())
	require.Equal(t, map[client.RunStatus]int{client.RunCompleted: 1, client.RunRunning: 1, client.RunFailed: 1},
		ix.Page(client.RunQuery{}).Counts)

	require.NoError(t, kv.Delete(ctx, layout.RunKey("old-1")))
	waitIndex("a deletion", func() bool { return len(ids(client.RunQuery{})) == 2 })
	require.Equal(t, []string{"new-1", "old-2"}, ids(client.RunQuery{}))

	// A record with its own TTL expires with a marker the watch delivers.
	put("short", "wf_c", protocol.RunCompleted, t0.Add(time.Second), jetstream.KeyTTL(time.Second))
	waitIndex("the short-lived run appears", func() bool { return len(ids(client.RunQuery{Workflow: "wf_c"})) == 1 })
	waitIndex("the short-lived run expires", func() bool { return len(ids(client.RunQuery{Workflow: "wf_c"})) == 0 })
	require.NoError(t, ix.Err())
	ix.Stop()
	ix.Stop() // twice is fine
}

// TestRunIndexLoadsWhenARecordExpiresUnread: a record removed from the
// bucket after the index's watch was created and before it was delivered
// (its TTL ran out; in the runs bucket an expired record's marker expires
// too) must not keep the index from becoming ready. The server stalls
// before the last record (the index's connection holds back its
// flow-control replies), which expires meanwhile; nats.go's
// end-of-initial-values marker counts on it. Before the fix the index
// never became ready.
func TestRunIndexLoadsWhenARecordExpiresUnread(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec, err := wirecodec.Encode(&protocol.RunRecord{V: protocol.SchemaVersion, ID: "late", Workflow: "wf",
		DefVersion: "v1", Status: protocol.RunRunning, State: "s", Path: []string{"s"}, CreatedAt: time.Now().UnixNano()})
	require.NoError(t, err)
	cl, hold, expire := expiringBehindHold(t, ctx, layout.RunsBucket(protocol.MustNames("exp")), layout.RunKey("late"), rec)
	ix, err := cl.WatchRuns(ctx, client.RunIndexConfig{})
	require.NoError(t, err)
	defer ix.Stop()
	natstest.Recv(t, hold.held, 10*time.Second) // the server now waits before "late"
	expire()
	select {
	case <-ix.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the index did not become ready")
	}
	require.Empty(t, ix.Page(client.RunQuery{}).Runs, "the large records do not decode; the late one expired before it was read")
}
