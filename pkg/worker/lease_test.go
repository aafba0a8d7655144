package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

// heartbeats delivers one value per InProgress the worker sends for a
// command of the "scripted" kind's consumer.
func heartbeats(t testing.TB, nc *nats.Conn) <-chan struct{} {
	t.Helper()
	consumer := "." + layout.TaskConsumer(fsm.QueueDefault, scripted{}.Kind()) + "."
	ch := make(chan struct{}, 4096)
	sub, err := nc.Subscribe("$JS.ACK.>", func(m *nats.Msg) {
		if string(m.Data) == "+WPI" && strings.Contains(m.Subject, consumer) {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

// A task that runs for several ack waits keeps its command: the worker's
// heartbeat renews the lease, nothing is redelivered, one attempt.
func TestLongTaskKeepsItsLease(t *testing.T) {
	t.Parallel()
	const ackWait = time.Second
	release := make(chan struct{})
	long := newScript(func(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
		select {
		case <-release:
			return fsm.NextWith("done", "finished"), nil
		case <-ctx.Done():
			return fsm.Result{}, ctx.Err()
		}
	})
	b := setup(t, worker.Config{AckWait: ackWait}, oneTask("long", long, fsm.TaskConfig{Retry: fsm.RetryNone()}))
	beats := heartbeats(t, b.nc)
	ctx := awaitCtx(t)
	runID := "r" + nuid.Next()
	_, err := b.client.Trigger(ctx, "long", &client.TriggerOpts{RunID: runID, NoWait: true})
	require.NoError(t, err)
	natstest.WaitFor(t, 30*time.Second, "attempt started", func() bool { return len(b.log.starts(runID)) == 1 })
	started := time.Now()
	// Twelve heartbeats, one per AckWait/3: the task has run four ack waits.
	for range 12 {
		natstest.Recv(t, beats, 10*time.Second)
	}
	held := time.Since(started)
	require.Greater(t, held, 3*ackWait, "twelve heartbeats came faster than AckWait/3 each")
	close(release)
	out, err := b.client.Await(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	require.Len(t, b.log.starts(runID), 1, "the command was redelivered while its task ran")
	t.Logf("a task ran %s (%.1f ack waits of %s), heartbeated, one attempt", held.Round(time.Millisecond),
		held.Seconds()/ackWait.Seconds(), ackWait)
}

// The worker sets its AckWait on task consumers that already exist with
// another one (a deployment moving from a long ack wait to a short one).
func TestAckWaitUpdatesExistingConsumer(t *testing.T) {
	t.Parallel()
	names := protocol.MustNames("")
	durable := layout.TaskConsumer(fsm.QueueDefault, scripted{}.Kind())
	ok := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) { return fsm.Next("done"), nil })
	b := setupFunc(t, func(_ *nats.Conn, js jetstream.JetStream) worker.Config {
		ctx := awaitCtx(t)
		_, err := js.CreateOrUpdateConsumer(ctx, layout.TasksStream(names), jetstream.ConsumerConfig{
			Durable: durable, FilterSubject: names.TaskSubject(fsm.QueueDefault, scripted{}.Kind()),
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 64 * 1024,
		})
		require.NoError(t, err)
		return worker.Config{AckWait: 2 * time.Second}
	}, oneTask("ackwait", ok, fsm.Minimal()))
	ctx := awaitCtx(t)
	cons, err := b.js.Consumer(ctx, layout.TasksStream(names), durable)
	require.NoError(t, err)
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, info.Config.AckWait)
	_, err = b.client.Run(ctx, "ackwait", nil)
	require.NoError(t, err)
}
