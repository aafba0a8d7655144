package fault

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TestKillWorkerMidBranch kills a worker process while it runs split
// branches: its branches are redelivered to the other worker, every join
// still decides All satisfied with each branch counted once.
func TestKillWorkerMidBranch(t *testing.T) {
	b := setup(t)
	b.startCoordinator(t, "coordinator-1")
	w1 := b.startWorker(t, "worker-1")
	b.startWorker(t, "worker-2")
	b.waitRegistered(t)
	const n = 40
	const branches = demo.SleepySplitBranches
	names := protocol.MustNames("")
	splits := make(chan struct{}, n)
	sub, err := b.nc.Subscribe(names.EventSubject(demo.SleepySplitName, "*", protocol.EventSplit), func(*nats.Msg) { splits <- struct{}{} })
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	ids := b.trigger(t, demo.SleepySplitName, n)
	for i := 0; i < n; i++ {
		select {
		case <-splits:
		case <-time.After(60 * time.Second):
			for _, id := range ids {
				rec, err := b.client.Get(context.Background(), id)
				t.Logf("run %s: %+v %v", id, rec, err)
			}
			t.Fatalf("%d of %d splits started within 60 s", i, n)
		}
	}
	// Every branch is in a worker's hands (delivered, not yet acked): the
	// two workers pull up to 256 commands each, so both hold some.
	_, js := b.srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The consumer is the workers' to create: it may not exist yet when the
	// splits have started (their commands wait in the stream meanwhile).
	natstest.WaitFor(t, 30*time.Second, "every branch delivered to a worker", func() bool {
		cons, err := js.Consumer(ctx, layout.TasksStream(names), layout.TaskConsumer(fsm.QueueDefault, demo.SplitBranch{}.Kind()))
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == n*branches
	})
	w1.Kill()
	t.Logf("killed worker-1 (SIGKILL) with %d branches of %d splits in the workers' hands", n*branches, n)

	b.awaitAll(t, ids, []string{"fan", "tally", "done"}, 3*time.Minute)
	redelivered := 0
	for _, id := range ids {
		rec, err := b.client.Get(ctx, id)
		require.NoError(t, err)
		var tally demo.SplitTally
		require.NoError(t, rec.Output(&tally))
		require.Equal(t, demo.SplitTally{Succeeded: branches, Redelivered: tally.Redelivered}, tally, "run %s", id)
		redelivered += tally.Redelivered
	}
	require.Positive(t, redelivered, "no branch was redelivered: the killed worker held none")

	// One join decision per run, counting each branch once.
	joins := map[string][]string{}
	ocons, err := js.OrderedConsumer(ctx, layout.EventsStream(names), jetstreamOrdered(names.EventSubject(demo.SleepySplitName, "*", protocol.EventJoin)))
	require.NoError(t, err)
	info, err := ocons.Info(ctx)
	require.NoError(t, err)
	for i := 0; i < int(info.NumPending); i++ {
		m, err := ocons.Next()
		require.NoError(t, err)
		var ev protocol.Event
		require.NoError(t, wirecodec.Decode(m.Data(), &ev, 0))
		joins[ev.RunID] = append(joins[ev.RunID], ev.Detail)
	}
	for _, id := range ids {
		require.Equal(t, []string{"all: satisfied, 4/4 succeeded, 0 failed"}, joins[id], "run %s", id)
	}
	requireEachOnce(t, ids, b.completedEvents(t, demo.SleepySplitName, ids))
	t.Logf("kill a worker mid-branch: %d splits of %d branches completed, %d branches redelivered and counted once, one join decision per run",
		n, branches, redelivered)
}
