package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// refuseResults makes the results stream refuse every publish (its maximum
// message size drops below any result) while the stream and the
// coordinators' consumer stay; the returned func restores it.
func refuseResults(t *testing.T, js jetstream.JetStream, nc *nats.Conn) (restore func()) {
	t.Helper()
	ctx := awaitCtx(t)
	names := protocol.MustNames("")
	st, err := js.Stream(ctx, layout.ResultsStream(names))
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	saved := info.Config
	blocked := saved
	blocked.MaxMsgSize = 1
	_, err = js.UpdateStream(ctx, blocked)
	require.NoError(t, err)
	// The stream refuses a result now (were it taken, the coordinator
	// would dead-letter this non-result).
	_, err = js.Publish(ctx, names.ResultSubject("probe"), []byte("probe"))
	require.Error(t, err, "the results stream still takes results")
	return func() {
		_, err := js.UpdateStream(context.Background(), saved)
		require.NoError(t, err)
	}
}

// Tasks that finish while the broker refuses their results keep their
// commands (heartbeating, for longer than the ack wait) and retry until the
// broker takes the results: the runs complete, with one attempt each,
// though their policy allows no retry; the outage is logged once.
func TestBrokerOutageCostsNoAttempt(t *testing.T) {
	t.Parallel()
	const ackWait = time.Second
	const runs = 3
	release := make(chan struct{})
	task := newScript(func(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
		select {
		case <-release:
			return fsm.NextWith("done", "ok"), nil
		case <-ctx.Done():
			return fsm.Result{}, ctx.Err()
		}
	})
	sink := &natstest.LogBuffer{}
	b := setup(t, worker.ResultsToStream(worker.Config{AckWait: ackWait, Logger: slog.New(slog.NewTextHandler(sink, nil))}),
		oneTask("outage", task, fsm.TaskConfig{Retry: fsm.RetryNone()}))
	beats := heartbeats(t, b.nc)
	ctx := awaitCtx(t)
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = "r" + nuid.Next()
		_, err := b.client.Trigger(ctx, "outage", &client.TriggerOpts{RunID: ids[i], NoWait: true})
		require.NoError(t, err)
	}
	for _, id := range ids {
		natstest.WaitFor(t, 30*time.Second, "attempt started", func() bool { return len(b.log.starts(id)) == 1 })
	}
	restore := refuseResults(t, b.js, b.nc)
	close(release)
	for _, id := range ids {
		natstest.WaitFor(t, 30*time.Second, "attempt ended", func() bool { return len(b.log.ends(id)) == 1 })
	}
	refusedAt := time.Now()
	// The outage lasts two ack waits beyond the tasks' end: six rounds of
	// heartbeats for the commands held while their results are refused
	// (checked after the runs, which say more if it fails).
	beaten, enough := 0, time.After(20*time.Second)
wait:
	for beaten < 6*runs {
		select {
		case <-beats:
			beaten++
		case <-enough:
			break wait
		}
	}
	outage := time.Since(refusedAt)
	restore()
	for _, id := range ids {
		out, err := b.client.Await(ctx, id)
		require.NoError(t, err, "run %s", id)
		require.Equal(t, client.RunCompleted, out.Status)
		var got string
		require.NoError(t, out.Output(&got))
		require.Equal(t, "ok", got)
		require.Len(t, b.log.starts(id), 1, "run %s: the outage cost an attempt", id)
	}
	require.Equal(t, 6*runs, beaten, "the commands were not held through the outage")
	require.Equal(t, 1, strings.Count(sink.String(), "the broker refuses finished tasks' outcomes"), "outage start logged once")
	natstest.WaitFor(t, 10*time.Second, "outage end logged", func() bool {
		return strings.Count(sink.String(), "the broker takes task outcomes again") == 1
	})
	t.Logf("%d runs finished their task while the results stream refused results for %s (ack wait %s): all completed, one attempt each",
		runs, outage.Round(time.Millisecond), ackWait)
}

// A command whose outcome the broker refuses for good is handed back with
// growing delays and, past the bound, ends in the dead-letter stream with
// its reason; the task itself ran once.
func TestUndeliverableOutcomeIsDeadLettered(t *testing.T) {
	t.Parallel()
	ok := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) { return fsm.Next("done"), nil })
	b := setup(t, worker.ResultsToStream(worker.Config{AckWait: time.Second, ResultRetry: 100 * time.Millisecond}),
		oneTask("undeliverable", ok, fsm.TaskConfig{Retry: fsm.RetryNone()}))
	_ = refuseResults(t, b.js, b.nc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	runID := "r" + nuid.Next()
	_, err := b.client.Trigger(ctx, "undeliverable", &client.TriggerOpts{RunID: runID, NoWait: true})
	require.NoError(t, err)
	names := protocol.MustNames("")
	subject := names.TaskSubject(fsm.QueueDefault, scripted{}.Kind())
	// Deliveries 2 to 5 are beyond the policy: each waits out the abandon
	// grace (AckWait + 5s) before it tries (and fails) to deliver.
	dlq, err := b.js.OrderedConsumer(ctx, layout.DLQStream(names), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{names.DLQSubject("task")}})
	require.NoError(t, err)
	m, err := dlq.Next(jetstream.FetchMaxWait(2 * time.Minute))
	require.NoError(t, err, "the command was not dead-lettered")
	var letter protocol.DeadLetter
	require.NoError(t, wirecodec.Decode(m.Data(), &letter, 0))
	require.Equal(t, subject, letter.Subject)
	require.Contains(t, letter.Reason, fmt.Sprintf("outcome not delivered on %d deliveries", 5))
	require.Len(t, b.log.starts(runID), 1, "only the first delivery ran the task")
	cons, err := b.js.Consumer(ctx, layout.TasksStream(names), layout.TaskConsumer(fsm.QueueDefault, scripted{}.Kind()))
	require.NoError(t, err)
	natstest.WaitFor(t, 10*time.Second, "the command settled", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	t.Logf("dead-lettered after 5 deliveries: %s", letter.Reason)
}

// A delivery beyond the retry policy — its previous holder's lease lapsed
// (as when a consumer's leader moves during an outage) while that holder
// still had a result to deliver — waits before it gives the attempt up as
// abandoned: the previous holder's late result lands first, and the run
// completes instead of failing.
func TestAbandonWaitsForALiveHolder(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	ctx := awaitCtx(t)
	names := protocol.MustNames("")
	reg := &fsm.Registry{}
	fsm.Register[scripted](reg)
	rerun := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
		return fsm.NextWith("done", "rerun"), nil
	})
	wf := oneTask("lapsed", rerun, fsm.TaskConfig{Retry: fsm.RetryNone()})
	start := func(cfg worker.Config) {
		cfg.Registry, cfg.AckWait, cfg.PresenceInterval = reg, time.Second, -1
		w, err := worker.New(nc, cfg)
		require.NoError(t, err)
		require.NoError(t, w.Start(ctx))
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
	}
	// This worker registers the workflow but pulls another queue.
	start(worker.Config{Workflows: []worker.Definer{wf}, Queues: []string{"elsewhere"}})
	co, err := coordinator.New(nc, coordinator.Config{Shards: 1})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	// The test takes the first delivery, as a worker whose lease lapses.
	cons, err := js.CreateOrUpdateConsumer(ctx, layout.TasksStream(names), jetstream.ConsumerConfig{
		Durable: layout.TaskConsumer(fsm.QueueDefault, scripted{}.Kind()), FilterSubject: names.TaskSubject(fsm.QueueDefault, scripted{}.Kind()),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second, MaxDeliver: -1, MaxAckPending: 64 * 1024,
	})
	require.NoError(t, err)
	runID := "r" + nuid.Next()
	_, err = cl.Trigger(ctx, "lapsed", &client.TriggerOpts{RunID: runID, NoWait: true})
	require.NoError(t, err)
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(30*time.Second))
	require.NoError(t, err)
	first := natstest.Recv(t, batch.Messages(), 30*time.Second)
	require.NotNil(t, first, "no command delivered")
	var cmd protocol.TaskCommand
	require.NoError(t, wirecodec.Decode(first.Data(), &cmd, 0))

	// A worker on the default queue gets the redelivery: attempt 2 of 1.
	start(worker.Config{})
	natstest.WaitFor(t, 30*time.Second, "the command redelivered to the worker", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumRedelivered > 0
	})
	// The first holder delivers its result late, then acknowledges.
	output, err := engine.EncodeOutput("late")
	require.NoError(t, err)
	data, err := wirecodec.Encode(&protocol.TaskResult{V: protocol.SchemaVersion, RunID: cmd.RunID, Step: cmd.Step,
		Branch: cmd.Branch, Attempts: 1, Worker: "lapsed-holder", Status: protocol.ResultOK, Next: "done", Output: output})
	require.NoError(t, err)
	res := &nats.Msg{Subject: names.ResultSubject(runID), Data: data, Header: nats.Header{}}
	res.Header.Set(jetstream.MsgIDHeader, layout.ResultMsgID(cmd.RunID, cmd.Step, cmd.Branch))
	_, err = js.PublishMsg(ctx, res)
	require.NoError(t, err)
	require.NoError(t, first.Ack())

	out, err := cl.Await(ctx, runID)
	require.NoError(t, err, "the redelivery gave the attempt up before the live holder's result")
	var got string
	require.NoError(t, out.Output(&got))
	require.Equal(t, "late", got)
}

// A command that cannot be decoded while the dead-letter stream refuses
// its letter is handed back with growing delays and, past the bound,
// terminated (logged once): it is not redelivered for ever.
func TestRefusedCommandWithoutDeadLetterStreamEnds(t *testing.T) {
	t.Parallel()
	sink := &natstest.LogBuffer{}
	b := setup(t, worker.Config{ResultRetry: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(sink, nil))})
	ctx := awaitCtx(t)
	names := protocol.MustNames("")
	st, err := b.js.Stream(ctx, layout.DLQStream(names))
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	blocked := info.Config
	blocked.MaxMsgSize = 1
	_, err = b.js.UpdateStream(ctx, blocked)
	require.NoError(t, err)

	_, err = b.js.Publish(ctx, names.TaskSubject(fsm.QueueDefault, scripted{}.Kind()), []byte("not a command"))
	require.NoError(t, err)
	cons, err := b.js.Consumer(ctx, layout.TasksStream(names), layout.TaskConsumer(fsm.QueueDefault, scripted{}.Kind()))
	require.NoError(t, err)
	natstest.WaitFor(t, 20*time.Second, "the refused command terminated", func() bool {
		return strings.Count(sink.String(), "dropping a refused command") == 1
	})
	natstest.WaitFor(t, 10*time.Second, "nothing left to deliver", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
	})
	info2, err := cons.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 4, info2.Delivered.Consumer, "deliveries of the refused command")
	require.Equal(t, 3, strings.Count(sink.String(), "command handed back for redelivery"))
}

// A worker stopped while it retries a finished task's result hands the
// command back; another worker runs it (its next attempt) once the broker
// takes results again.
func TestStopWhileRetryingHandsBack(t *testing.T) {
	t.Parallel()
	runs := map[string]int{}
	var mu sync.Mutex
	task := newScript(func(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		runs[tc.RunID]++
		return fsm.NextWith("done", tc.Attempt), nil
	})
	sink := &natstest.LogBuffer{}
	wf := oneTask("handback", task, fsm.TaskConfig{Retry: fsm.RetryFixed(1, 10*time.Millisecond)})
	b := setup(t, worker.ResultsToStream(worker.Config{AckWait: time.Second, Logger: slog.New(slog.NewTextHandler(sink, nil))}), wf)
	restore := refuseResults(t, b.js, b.nc)
	ctx := awaitCtx(t)
	runID := "r" + nuid.Next()
	_, err := b.client.Trigger(ctx, "handback", &client.TriggerOpts{RunID: runID, NoWait: true})
	require.NoError(t, err)
	natstest.WaitFor(t, 30*time.Second, "the result refused", func() bool {
		return strings.Count(sink.String(), "the broker refuses finished tasks' outcomes") == 1
	})
	sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	require.Error(t, b.worker.Stop(sctx), "the retrying task outlived the grace period")
	require.Equal(t, 1, strings.Count(sink.String(), "worker stopping: command handed back"))
	restore()

	reg := &fsm.Registry{}
	fsm.Register[scripted](reg)
	w2, err := worker.New(b.nc, worker.Config{Registry: reg, AckWait: time.Second, PresenceInterval: -1})
	require.NoError(t, err)
	require.NoError(t, w2.Start(ctx))
	t.Cleanup(func() { _ = w2.Stop(context.Background()) })
	out, err := b.client.Await(ctx, runID)
	require.NoError(t, err)
	var attempt int
	require.NoError(t, out.Output(&attempt))
	require.Equal(t, 2, attempt, "the handed-back command ran again on the other worker")
}

// Split branches that finish while the branches bucket refuses their
// outcomes keep their commands and retry: the join decides with every
// branch run once.
func TestBranchOutcomeOutageCostsNoAttempt(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	branch := newScript(func(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
		select {
		case <-release:
			return fsm.NextWith("", "branch"), nil
		case <-ctx.Done():
			return fsm.Result{}, ctx.Err()
		}
	})
	after := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) { return fsm.Next("done"), nil })
	wf := fsm.New[string]("branch_outage", "fan").
		RegisterSplit("fan", []fsm.Task{scripted{Name: branch}, scripted{Name: branch}}, fsm.JoinConfig[string]{JoinState: "after"}).
		Register("after", scripted{Name: after}, fsm.Minimal()).
		Exit("done")
	b := setup(t, worker.Config{AckWait: time.Second}, wf)
	beats := heartbeats(t, b.nc)
	ctx := awaitCtx(t)
	runID := "r" + nuid.Next()
	_, err := b.client.Trigger(ctx, "branch_outage", &client.TriggerOpts{RunID: runID, NoWait: true})
	require.NoError(t, err)
	natstest.WaitFor(t, 30*time.Second, "both branches started", func() bool { return len(b.log.starts(runID)) == 2 })

	names := protocol.MustNames("")
	st, err := b.js.Stream(ctx, "KV_"+layout.BranchesBucket(names))
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	saved, blocked := info.Config, info.Config
	blocked.MaxMsgSize = 1
	_, err = b.js.UpdateStream(ctx, blocked)
	require.NoError(t, err)
	close(release)
	natstest.WaitFor(t, 30*time.Second, "both branches ended", func() bool { return len(b.log.ends(runID)) == 2 })
	// Two ack waits of heartbeats for the two held branch commands.
	beaten, enough := 0, time.After(20*time.Second)
wait:
	for beaten < 12 {
		select {
		case <-beats:
			beaten++
		case <-enough:
			break wait
		}
	}
	_, err = b.js.UpdateStream(ctx, saved)
	require.NoError(t, err)

	out, err := b.client.Await(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, []string{"fan", "after", "done"}, out.Path)
	require.Len(t, b.log.starts(runID), 3, "two branches and the join state, each once")
	require.Equal(t, 12, beaten, "the branch commands were not held through the outage")
}
