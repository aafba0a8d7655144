package coordinator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// TestResultForRunAFollowerLacks: on a three-node cluster with R3 buckets,
// coordinators connected only to followers of the runs stream gets
// results for runs whose records were written through the leader's node
// an instant before (as another coordinator would): the follower's direct
// get often has no record yet. Every result must be applied and every run
// complete; none may be dead-lettered as "result for unknown run". Without
// the leader confirmation (internal/kvread), some are.
func TestResultForRunAFollowerLacks(t *testing.T) {
	t.Parallel()
	cl := natstest.StartCluster(t, 3)
	nc, js := cl.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{Replicas: 3}))
	names := protocol.MustNames("")

	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{demo.OneTask()}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	var leader string
	natstest.WaitFor(t, 30*time.Second, "a leader of the runs stream", func() bool {
		s, err := js.Stream(ctx, "KV_"+layout.RunsBucket(names))
		if err != nil || s.CachedInfo().Cluster == nil {
			return false
		}
		leader = s.CachedInfo().Cluster.Leader
		return leader != ""
	})
	li := cl.Index(leader)
	lnc, err := nats.Connect(cl.URL(li))
	require.NoError(t, err)
	t.Cleanup(lnc.Close)
	ljs, err := jetstream.New(lnc)
	require.NoError(t, err)
	runsViaLeader, err := ljs.KeyValue(ctx, layout.RunsBucket(names))
	require.NoError(t, err)
	// One coordinator on each follower, none on the leader's node.
	for _, fi := range []int{(li + 1) % 3, (li + 2) % 3} {
		fnc, err := nats.Connect(cl.URL(fi))
		require.NoError(t, err)
		t.Cleanup(fnc.Close)
		co, err := coordinator.New(fnc, coordinator.Config{Shards: 8})
		require.NoError(t, err)
		require.NoError(t, co.Start(ctx))
		t.Cleanup(func() {
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer scancel()
			_ = co.Stop(sctx)
		})
	}

	def, err := demo.OneTask().Definition()
	require.NoError(t, err)
	m, err := engine.Compile(def)
	require.NoError(t, err)
	const runs = 300
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = fmt.Sprintf("lag%d", i)
		rec, _, err := engine.Start(m, &protocol.Trigger{V: protocol.SchemaVersion, Workflow: def.Name}, ids[i], time.Now())
		require.NoError(t, err)
		data, err := wirecodec.Encode(rec)
		require.NoError(t, err)
		_, err = runsViaLeader.Create(ctx, layout.RunKey(ids[i]), data)
		require.NoError(t, err)
		res, err := wirecodec.Encode(&protocol.TaskResult{V: protocol.SchemaVersion, RunID: ids[i], Step: 0,
			Branch: -1, Status: protocol.ResultOK, Next: "done", Attempts: 1})
		require.NoError(t, err)
		msg := &nats.Msg{Subject: names.ResultSubject(ids[i]), Data: res, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, layout.ResultMsgID(ids[i], 0, -1))
		_, err = ljs.PublishMsg(ctx, msg)
		require.NoError(t, err)
	}
	c, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	dlq, err := js.Stream(ctx, layout.DLQStream(names))
	require.NoError(t, err)
	for _, id := range ids {
		natstest.WaitFor(t, time.Minute, "run "+id+" to complete", func() bool {
			rec, err := c.Get(ctx, id)
			if err == nil && rec.Status.Terminal() {
				require.Equal(t, client.RunCompleted, rec.Status)
				return true
			}
			info, err := dlq.Info(ctx)
			require.NoError(t, err)
			require.Zero(t, info.State.Msgs, "a result was dead-lettered")
			return false
		})
	}
	info, err := dlq.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs, "no input is dead-lettered")
}
