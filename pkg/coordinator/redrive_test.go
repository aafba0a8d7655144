package coordinator_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

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

// redriveBundle is an embedded server with a one-task worker, one
// coordinator and a client.
type redriveBundle struct {
	srv   *natstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	cl    *client.Client
	co    *coordinator.Coordinator
	names protocol.Names
}

func setupRedrive(t *testing.T, ctx context.Context, cfg coordinator.Config) *redriveBundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{demo.OneTask()}, AckWait: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, cfg)
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		require.NoError(t, co.Stop(sctx))
	})
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	// One run first, so the definition is known and the path is warm.
	_, err = cl.Run(ctx, demo.OneTaskName, nil)
	require.NoError(t, err)
	return &redriveBundle{srv: srv, nc: nc, js: js, cl: cl, co: co, names: protocol.MustNames("")}
}

// loseCommands makes the broker lose task commands after acknowledging
// them, as a server SIGKILLed before it stored them does: the tasks stream
// stops listening, and a plain subscriber answers each command's publish
// with a made-up acknowledgement. It returns the subjects of the commands
// it swallowed and a function that restores the stream.
func loseCommands(t *testing.T, ctx context.Context, b *redriveBundle) (<-chan string, func()) {
	t.Helper()
	tasks, err := b.js.Stream(ctx, layout.TasksStream(b.names))
	require.NoError(t, err)
	orig := tasks.CachedInfo().Config
	swallow := orig
	swallow.Subjects = []string{b.names.Prefix() + ".nothing.>"}
	_, err = b.js.UpdateStream(ctx, swallow)
	require.NoError(t, err)
	lost := make(chan string, 16)
	seq := 0
	sub, err := b.nc.Subscribe(b.names.Prefix()+".task.>", func(m *nats.Msg) {
		seq++
		_ = m.Respond([]byte(fmt.Sprintf(`{"stream":%q,"seq":%d}`, orig.Name, 1_000_000+seq)))
		lost <- m.Subject
	})
	require.NoError(t, err)
	require.NoError(t, b.nc.Flush())
	var once sync.Once
	return lost, func() {
		once.Do(func() {
			require.NoError(t, sub.Unsubscribe())
			_, err := b.js.UpdateStream(ctx, orig)
			require.NoError(t, err)
		})
	}
}

// TestFirstDeliveryRedrivesRunWithLostCommand: a run whose record was
// written but whose command the broker lost (a server SIGKILLed before it
// persisted the command, or the delivery count of the trigger) must be
// driven on by the next input that meets it, even when that input arrives
// as a first delivery (NumDelivered == 1: the server lost the count too).
// Here the same trigger is published again as a new message. Before the
// fix the coordinator acked it as a harmless duplicate and the run stayed
// at its first state for ever.
func TestFirstDeliveryRedrivesRunWithLostCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// No stall check: only the duplicate input may drive the run on.
	b := setupRedrive(t, ctx, coordinator.Config{Shards: 2, AckWait: 5 * time.Second, StallCheckInterval: -1})

	runID := "r-lost-command"
	loseTriggeredCommand(t, ctx, b, runID)

	// The same trigger again, as a new message: its first delivery.
	trig := &protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.OneTaskName, RunID: runID}
	data, err := wirecodec.Encode(trig)
	require.NoError(t, err)
	msg := &nats.Msg{Subject: b.names.TriggerSubject(demo.OneTaskName), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "trig:"+runID+":again")
	_, err = b.js.PublishMsg(ctx, msg)
	require.NoError(t, err)

	out, err := b.cl.Await(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
}

// loseTriggeredCommand triggers a run whose command the broker loses after
// acknowledging it, waits until the trigger is acknowledged, restores the
// tasks stream and checks the run is stuck at its first state.
func loseTriggeredCommand(t *testing.T, ctx context.Context, b *redriveBundle, runID string) {
	t.Helper()
	lost, restore := loseCommands(t, ctx, b)
	defer restore()
	_, err := b.cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{RunID: runID})
	require.NoError(t, err)
	natstest.Recv(t, lost, 30*time.Second)
	natstest.WaitFor(t, 30*time.Second, "the trigger acknowledged", func() bool {
		c, err := b.js.Consumer(ctx, layout.TriggersStream(b.names), coordinator.ConsumerDefault)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	restore()
	rec, err := b.cl.Get(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, client.RunRunning, rec.Status, "the run is stuck: its command was lost")
}

// TestStallCheckRedrivesStalledRun: a run whose command was lost and which
// no input will ever meet again is found by its shard's stall check once it
// has not moved for StallAfter (its step has no time bound), re-driven, and
// completes; the counter says so once. The coordinator's clock is moved on
// by hand, so the check fires exactly when the test says.
func TestStallCheckRedrivesStalledRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	b := setupRedrive(t, ctx, coordinator.Config{Shards: 2, AckWait: 5 * time.Second, Now: now,
		StallCheckInterval: 20 * time.Millisecond})

	runID := "r-stalled"
	loseTriggeredCommand(t, ctx, b, runID)
	require.Zero(t, b.co.Stats().Stalled, "nothing stalled yet (the clock has not moved)")

	skew.Store(int64(coordinator.StallAfterDefault + time.Minute))
	out, err := b.cl.Await(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	require.Equal(t, uint64(1), b.co.Stats().Stalled)
}
