package coordinator_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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

// TestLostPublishAckDoesNotWedgeShard: a command whose publish is never
// acknowledged (a stream leader stopped mid-publish loses it so) must not
// stop the shard from acknowledging its inputs. The tasks stream is made to
// swallow commands — a plain subscriber takes them and never answers — for
// one run; then the stream is restored. The run must complete (its trigger,
// redelivered, publishes the command again) and every input of the
// coordinator must end acknowledged. Before publish acks had a timeout, the
// shard's ack loop waited for the lost ack for ever: its inputs were
// redelivered again and again and, once its queue filled, its runs stopped.
func TestLostPublishAckDoesNotWedgeShard(t *testing.T) {
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	names := protocol.MustNames("")

	cl := startOneShard(ctx, t, nc, demo.OneTask())

	// One run first, so the definition is known and the path is warm.
	_, err := cl.Run(ctx, demo.OneTaskName, nil)
	require.NoError(t, err)

	tasks, err := js.Stream(ctx, layout.TasksStream(names))
	require.NoError(t, err)
	orig := tasks.CachedInfo().Config
	swallow := orig
	swallow.Subjects = []string{names.Prefix() + ".nothing.>"}
	_, err = js.UpdateStream(ctx, swallow)
	require.NoError(t, err)
	taken := make(chan string, 16)
	sub, err := nc.Subscribe(names.Prefix()+".task.>", func(m *nats.Msg) { taken <- m.Subject })
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	// A stored trigger: its redelivery is what publishes the command again.
	id, err := cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{NoWait: true})
	require.NoError(t, err)
	natstest.Recv(t, taken, 30*time.Second) // the command went out and was never acknowledged
	// A trigger request meanwhile: its first command is not acknowledged,
	// so it is answered "retry" and the client sends it again until the
	// stream is back.
	requested := make(chan error, 1)
	go func() {
		rid, err := cl.Trigger(ctx, demo.OneTaskName, nil)
		if err == nil {
			_, err = cl.Await(ctx, rid)
		}
		requested <- err
	}()
	natstest.Recv(t, taken, 30*time.Second)

	require.NoError(t, sub.Unsubscribe())
	_, err = js.UpdateStream(ctx, orig)
	require.NoError(t, err)
	require.NoError(t, natstest.Recv(t, requested, 60*time.Second), "the request's run completes once the stream is back")

	out, err := cl.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	// More runs through the same (only) shard, then nothing left unacknowledged.
	for i := 0; i < 20; i++ {
		_, err := cl.Run(ctx, demo.OneTaskName, nil)
		require.NoError(t, err)
	}
	waitInputsAcked(ctx, t, js, names)
}

// TestLostNextCommandIsPublishedAgain: the command a result leads to (a
// chain's next task, sent as the record writes are) is never acknowledged.
// The result must not be answered as applied-and-stored; once the stream is
// back the run goes on from its record, and every input of the coordinator
// ends acknowledged. The tasks stream keeps the first state's subject and
// loses the second's, which a plain subscriber takes and never answers.
func TestLostNextCommandIsPublishedAgain(t *testing.T) {
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	names := protocol.MustNames("")

	cl := startOneShard(ctx, t, nc, demo.Sleepy(time.Millisecond))
	_, err := cl.Run(ctx, demo.SleepyName, nil) // the definition known, the path warm
	require.NoError(t, err)

	tasks, err := js.Stream(ctx, layout.TasksStream(names))
	require.NoError(t, err)
	orig := tasks.CachedInfo().Config
	first, second := names.TaskSubject(fsm.QueueDefault, demo.Sleep{}.Kind()), names.TaskSubject(fsm.QueueDefault, demo.Noop{}.Kind())
	lossy := orig
	lossy.Subjects = []string{first}
	_, err = js.UpdateStream(ctx, lossy)
	require.NoError(t, err)
	taken := make(chan struct{}, 16)
	sub, err := nc.Subscribe(second, func(*nats.Msg) { taken <- struct{}{} })
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	id, err := cl.Trigger(ctx, demo.SleepyName, nil)
	require.NoError(t, err)
	natstest.Recv(t, taken, 30*time.Second) // the second command went out and was never acknowledged
	natstest.Recv(t, taken, 30*time.Second) // and went out again: the result was not settled as stored
	require.NoError(t, sub.Unsubscribe())
	_, err = js.UpdateStream(ctx, orig)
	require.NoError(t, err)

	out, err := cl.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	require.Equal(t, []string{"sleep", "after", "done"}, out.Path)
	waitInputsAcked(ctx, t, js, names)
}

// startOneShard starts a worker hosting wf and a coordinator of one shard
// (so every input goes through the same ack loop), stopped in t.Cleanup
// (a wedged ack loop would keep the coordinator from stopping), and
// returns a client.
func startOneShard(ctx context.Context, t *testing.T, nc *nats.Conn, wf worker.Definer) *client.Client {
	t.Helper()
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{wf}, AckWait: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 1, AckWait: time.Second})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		require.NoError(t, co.Stop(sctx), "the coordinator stops (a wedged ack loop would not)")
	})
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	return cl
}

// waitInputsAcked waits until the coordinator's stream inputs (triggers,
// results) are all acknowledged.
func waitInputsAcked(ctx context.Context, t *testing.T, js jetstream.JetStream, names protocol.Names) {
	t.Helper()
	natstest.WaitFor(t, 30*time.Second, "every coordinator input acknowledged", func() bool {
		for _, stream := range []string{layout.TriggersStream(names), layout.ResultsStream(names)} {
			c, err := js.Consumer(ctx, stream, coordinator.ConsumerDefault)
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
				return false
			}
		}
		return true
	})
}
