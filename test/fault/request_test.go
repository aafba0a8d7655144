package fault

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wire/faults"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TestCoordinatorKilledBetweenCommandAndRecord: a trigger request reaches
// the only coordinator, a build with the canofaults tag told to SIGKILL
// itself once the run's first command is stored and before the run's
// record is written (pkg/coordinator, faults_canofaults.go). The sender
// gets no answer and does not send again. The worker runs the command; its
// result waits in the results stream. A second coordinator (a shipped
// build) starts, takes the result, creates the record from the start the
// result echoes, and the run completes: once, with its exact path, its
// task attempted once, and no trigger stored anywhere.
func TestCoordinatorKilledBetweenCommandAndRecord(t *testing.T) {
	b := setup(t)
	c1 := b.startFaultyCoordinator(t, "kill-after-first-command")
	w := b.startWorker(t, "worker-1")
	waitStarted(t, w)
	b.waitDefined(t, faults.FlakyName)

	const id = "killed-before-record"
	data, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: faults.FlakyName, RunID: id,
		Input: mustValue(t, faults.FaultInput{})})
	require.NoError(t, err)
	names := protocol.MustNames("")
	_, err = b.nc.RequestMsg(&nats.Msg{Subject: names.RPCTriggerSubject(faults.FlakyName), Data: data, Header: nats.Header{}}, 3*time.Second)
	require.Error(t, err, "the coordinator died before answering")
	natstest.WaitFor(t, 10*time.Second, "the faulty coordinator killed itself", c1.Exited)
	t.Logf("request: %v; coordinator exited after the command was stored", err)

	// The command was stored and ran; no coordinator is left to write the record.
	st := b.runStore(t)
	natstest.WaitFor(t, 30*time.Second, "the task ran", func() bool { return len(attempts(t, st, id)) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = b.client.Get(ctx, id)
	require.ErrorIs(t, err, client.ErrNotFound, "no record before a coordinator takes the result")

	b.startCoordinator(t, "coordinator-2")
	out, err := b.client.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	rec, err := b.client.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, []string{"call", "done"}, rec.Path)
	require.Len(t, attempts(t, st, id), 1, "the task ran once")
	requireEachOnce(t, []string{id}, b.completedEvents(t, faults.FlakyName, []string{id}))

	_, js := b.srv.Connect(t)
	info, err := js.Stream(ctx, "CANO_TRIGGERS")
	require.NoError(t, err)
	require.Zero(t, info.CachedInfo().State.Msgs, "the request stored no trigger")
}

func mustValue(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wirecodec.EncodeValue(v)
	require.NoError(t, err)
	return b
}

// TestKillCoordinatorMidRequests: one-task runs triggered by request
// (client.Trigger, waiting for each answer) through two coordinators and
// two workers; coordinator-1 is SIGKILLed while requests are in flight, at
// whatever point each of them has reached. Every Trigger call returns its
// run id (a request left unanswered by the dead coordinator is sent again,
// same run id, and taken by the other one), and every run completes once,
// with its exact path.
//
// With -defer-start (coordinator.Config.DeferStart) the killed coordinator
// also held start records not written yet: their runs complete all the same
// (the record is created from the start the first result echoes).
func TestKillCoordinatorMidRequests(t *testing.T) {
	t.Run("record at the start", func(t *testing.T) { killCoordinatorMidRequests(t) })
	t.Run("deferred start", func(t *testing.T) { killCoordinatorMidRequests(t, "-defer-start", "300ms") })
}

func killCoordinatorMidRequests(t *testing.T, flags ...string) {
	b := setup(t)
	c1 := b.startCoordinator(t, "coordinator-1", flags...)
	b.startCoordinator(t, "coordinator-2", flags...)
	b.startWorker(t, "worker-1")
	b.startWorker(t, "worker-2")
	b.waitRegistered(t)
	const n = 600
	ids := make([]string, n)
	var next atomic.Int64
	answered := make(chan struct{}, n)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				id, err := b.client.Trigger(ctx, demo.OneTaskName, nil)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("trigger %d: %w", i, err)
					return
				}
				ids[i] = id
				answered <- struct{}{}
			}
		}()
	}
	for i := 0; i < 100; i++ {
		natstest.Recv(t, answered, 60*time.Second)
	}
	c1.Kill()
	t.Logf("killed coordinator-1 (SIGKILL) with trigger requests in flight")
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	b.awaitAll(t, ids, []string{"work", "done"}, 3*time.Minute)
	requireEachOnce(t, ids, b.completedEvents(t, demo.OneTaskName, ids))
	t.Logf("kill a coordinator mid-requests: %d runs triggered by request, %d answered with their run id, each completed once", n, n)
}

// TestCoordinatorKilledAfterScheduledRecord: a run triggered to start later
// reaches the only coordinator, a canofaults build told to SIGKILL itself
// once it has created the run's record (status scheduled) and before it
// publishes the run's start timer and acknowledges the trigger. The record
// is there; nothing would ever start the run. A second coordinator gets
// the trigger again (its ack wait passed), finds the record and publishes
// what it owes — the start timer — so the run starts at its time and
// completes once, its task attempted once, never before its start.
func TestCoordinatorKilledAfterScheduledRecord(t *testing.T) {
	b := setup(t)
	c1 := b.startFaultyCoordinator(t, "kill-after-scheduled-record")
	w := b.startWorker(t, "worker-1")
	waitStarted(t, w)
	b.waitDefined(t, faults.FlakyName)

	const id = "killed-after-scheduled-record"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	at := time.Now().Add(2 * time.Second)
	_, err := b.client.Trigger(ctx, faults.FlakyName, &client.TriggerOpts{RunID: id, StartAt: at, NoWait: true,
		Input: faults.FaultInput{}})
	require.NoError(t, err)
	natstest.WaitFor(t, 10*time.Second, "the faulty coordinator killed itself", c1.Exited)
	require.Contains(t, c1.Output(), "record of scheduled run "+id+" written")
	rec, err := b.client.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunScheduled, rec.Status, "the record was written before the crash")

	b.startCoordinator(t, "coordinator-2")
	out, err := b.client.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	rec, err = b.client.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, []string{"call", "done"}, rec.Path)
	require.True(t, rec.StartAt.Equal(at))
	require.False(t, rec.History[0].Entered.Before(at), "entered %s, before its start %s", rec.History[0].Entered, at)
	st := b.runStore(t)
	require.Len(t, attempts(t, st, id), 1, "the task ran once")
	requireEachOnce(t, []string{id}, b.completedEvents(t, faults.FlakyName, []string{id}))
}
