package fault

import (
	"context"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/proctest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wire/faults"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// killedAt finds the run id a canofaults process named in the line it
// printed before its SIGKILL ("" if it printed none).
func killedAt(p *proctest.Proc, re *regexp.Regexp) string {
	m := re.FindStringSubmatch(p.Output())
	if m == nil {
		return ""
	}
	return m[1]
}

// TestCoordinatorKilledBetweenResultRecordAndAnswer: a coordinator built
// with the canofaults tag SIGKILLs itself once it has written a run's
// record for a result that came as a request — before it publishes what
// the run owes (the next command, the completed event) and before it
// answers (pkg/coordinator, faults_canofaults.go). Chain and one-task runs
// are triggered while it is the only coordinator, so it dispatches their
// first commands and the worker sends it their results; a second (shipped)
// coordinator starts as soon as the first run has started. The killed
// coordinator's result request times out in the worker, which publishes the
// result to the results stream marked resent; the other coordinator finds
// it applied and re-publishes what the run owes. Nobody triggers again.
// Every run completes once with its exact path, and each one-task run's
// task ran once and is counted once in its record.
func TestCoordinatorKilledBetweenResultRecordAndAnswer(t *testing.T) {
	b := setup(t)
	c1 := b.startFaultyCoordinator(t, "kill-after-result-record")
	w := b.startWorker(t, "worker-1")
	waitStarted(t, w)
	b.waitDefined(t, demo.ChainName)
	b.waitDefined(t, faults.FlakyName)

	started := make(chan *nats.Msg, 64)
	sub, err := b.nc.ChanSubscribe("cano.event.*.*.started", started)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, b.nc.Flush())
	chains := b.trigger(t, demo.ChainName, 20)
	flaky := b.triggerWith(t, faults.FlakyName, faults.FaultInput{}, 10)
	natstest.Recv(t, started, 30*time.Second) // the faulty coordinator dispatched a first command
	b.startCoordinator(t, "coordinator-2")

	re := regexp.MustCompile(`canofaults: record of run (\S+) written for a result request`)
	natstest.WaitFor(t, time.Minute, "the faulty coordinator killed itself after a record write", c1.Exited)
	killed := killedAt(c1, re)
	require.NotEmpty(t, killed, "the faulty coordinator died at the fault point (its last words name the run)")
	require.True(t, slices.Contains(chains, killed) || slices.Contains(flaky, killed), "run %s is one of the test's", killed)
	t.Logf("coordinator-faulty SIGKILLed itself after writing the record of run %s for a result request", killed)

	b.awaitAll(t, chains, chainPath(), 3*time.Minute)
	b.awaitAll(t, flaky, []string{"call", "done"}, 3*time.Minute)
	requireEachOnce(t, chains, b.completedEvents(t, demo.ChainName, chains))
	requireEachOnce(t, flaky, b.completedEvents(t, faults.FlakyName, flaky))
	st := b.runStore(t)
	_, js := b.srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results, err := js.Stream(ctx, layout.ResultsStream(protocol.MustNames("")))
	require.NoError(t, err)
	stored := results.CachedInfo().State.LastSeq
	require.NotZero(t, stored, "the unanswered result went to the results stream")
	for _, id := range flaky {
		require.Len(t, attempts(t, st, id), 1, "run %s: its task ran once", id)
		rec, err := rawRecord(ctx, js, id)
		require.NoError(t, err)
		require.EqualValues(t, 1, rec.Totals.Attempts, "run %s: its record counts one attempt", id)
	}
	t.Logf("killed between a result's record write and its answer: %d chain and %d one-task runs triggered once, each completed once with its exact path; each one-task run's task ran once; %d results went to the results stream",
		len(chains), len(flaky), stored)
}

// TestWorkerKilledAfterSendingResult: a worker built with the canofaults tag
// SIGKILLs itself once it has sent its first result request, before the
// coordinator's answer (pkg/worker, faults_canofaults.go): the coordinator
// applies the result, but the command is never acknowledged. The run
// completes with that first result; the command is redelivered to a second
// worker, which runs the task again (at least once), and its result
// changes nothing: same record revision, output and attempt count, one
// completed event.
func TestWorkerKilledAfterSendingResult(t *testing.T) {
	b := setup(t)
	b.startCoordinator(t, "coordinator-1")
	t.Setenv("CANO_FAULT_WORKER", "kill-after-result-sent")
	w1 := b.startWorker(t, "worker-faulty")
	t.Setenv("CANO_FAULT_WORKER", "") // the next worker runs without the fault
	waitStarted(t, w1)
	b.waitDefined(t, faults.FlakyName)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const id = "worker-killed-after-result"
	_, err := b.client.Trigger(ctx, faults.FlakyName, &client.TriggerOpts{RunID: id, NoWait: true, Input: faults.FaultInput{}})
	require.NoError(t, err)
	natstest.WaitFor(t, time.Minute, "the faulty worker killed itself after sending its result", w1.Exited)
	re := regexp.MustCompile(`canofaults: result request of run (\S+) sent; SIGKILL`)
	require.Equal(t, id, killedAt(w1, re), "the faulty worker died at the fault point")

	// The result it sent was applied: the run completed on attempt 1.
	out, err := b.client.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	require.Equal(t, []string{"call", "done"}, out.Path)
	var attempt int
	require.NoError(t, out.Output(&attempt))
	require.Equal(t, 1, attempt, "the killed worker's result completed the run")
	st := b.runStore(t)
	require.Len(t, attempts(t, st, id), 1)
	js, err := jetstream.New(b.nc)
	require.NoError(t, err)
	runs, err := js.KeyValue(ctx, layout.RunsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	before, err := runs.Get(ctx, layout.RunKey(id))
	require.NoError(t, err)

	// The command was not acknowledged: it goes to the next worker.
	w2 := b.startWorker(t, "worker-2")
	natstest.WaitFor(t, time.Minute, "the task ran again on worker-2", func() bool { return len(attempts(t, st, id)) == 2 })
	again := attempts(t, st, id)[1]
	require.Equal(t, w2.Pid(), again.PID, "the second attempt ran on worker-2")
	require.Equal(t, 2, again.Attempt)
	cons, err := js.Consumer(ctx, layout.TasksStream(protocol.MustNames("")), layout.TaskConsumer(fsm.QueueDefault, faults.FlakyCall{}.Kind()))
	require.NoError(t, err)
	natstest.WaitFor(t, time.Minute, "worker-2 settled the command", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})

	// The second result changed nothing.
	after, err := runs.Get(ctx, layout.RunKey(id))
	require.NoError(t, err)
	require.Equal(t, before.Revision(), after.Revision(), "the record was not written again")
	rec, err := rawRecord(ctx, js, id)
	require.NoError(t, err)
	require.Equal(t, []string{"call", "done"}, rec.Path)
	require.EqualValues(t, 1, rec.Totals.Attempts, "the record counts one attempt")
	require.Equal(t, "worker-faulty", rec.History[0].Worker, "the applied result is the killed worker's")
	requireEachOnce(t, []string{id}, b.completedEvents(t, faults.FlakyName, []string{id}))
	require.Len(t, attempts(t, st, id), 2, "the task ran twice, no more")
	t.Logf("worker SIGKILLed after sending its result: run completed once on attempt 1; the command was redelivered and ran again on worker-2 (attempt 2), whose result changed nothing (record revision %d kept)",
		after.Revision())
}
