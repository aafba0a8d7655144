package fault

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
	"github.com/cano-nats/cano/internal/proctest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// triggerRound triggers a round of the load (chain and parallel_fetch runs
// at once) in the background; the returned channel gives the outcome once
// every trigger is stored.
func triggerRound(ctx context.Context, e *crashEnv, l *load, round, chains, fetches int) <-chan error {
	batches := map[string][]string{
		demo.ChainName:    l.add(fmt.Sprintf("chain-%d", round), chains, chainWant()),
		demo.WorkflowName: l.add(fmt.Sprintf("pf-%d", round), fetches, pfWant),
	}
	done := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		for wf, ids := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := triggerRetrying(ctx, e.cl, wf, ids); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		done <- first
	}()
	return done
}

// TestBrokerKilledAloneUnderLoad is issue 17's first fault: nats-server, its
// own OS process, SIGKILLed within a millisecond of a record write while
// runs flow, and started again on the same store and port, five times;
// the two coordinators and two workers are left running through it. Every
// run must complete exactly once with its exact path, and no process may
// exit because the broker was gone for a while.
//
// What it catches: an input whose record write survived the crash but
// whose delivery count did not comes back with NumDelivered == 1; a
// coordinator that takes that for a harmless duplicate acks it without
// re-publishing what the record owes, and the run is stuck for ever (the
// failure lists such runs: "running at sN step N; nothing for it in any
// stream"). Also a process that gives up on a slow broker, or a stream
// (the in-memory events stream) nothing re-creates after the restart.
func TestBrokerKilledAloneUnderLoad(t *testing.T) {
	e := newCrashEnv(t)
	procs := e.startEngine(t, 1)
	waitDefined(t, e.js, demo.ChainName)
	waitDefined(t, e.js, demo.WorkflowName)
	writes := watchRecordWrites(t, e.nc)
	l := newLoad()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The first outage lasts 3 s: a parallel_fetch branch caught in it needs
	// the 3 s, the processes' reconnect (every 250-500 ms) and possibly a
	// redelivery after the 2 s ack wait, which may fairly expire the
	// workflow's 5 s join timeout; so that round's load is the chain only.
	// Then four restarts at once (the processes are back within about a
	// second of each kill), where every run of both workflows must complete.
	rounds := []struct {
		outage  time.Duration
		fetches int
	}{{3 * time.Second, 0}, {0, 15}, {0, 15}, {0, 15}, {0, 15}}
	var faults []time.Time
	for r, round := range rounds {
		triggered := triggerRound(ctx, e, l, r, 120, round.fetches)
		lag := writes.faultAfter(t, 200, 2*time.Minute, e.srv.Kill)
		faults = append(faults, time.Now())
		if round.outage > 0 {
			time.Sleep(round.outage) // the fault: the broker stays down this long
		}
		e.srv.Restart()
		waitRecovered(t, e.js)
		require.NoError(t, <-triggered)
		t.Logf("round %d: SIGKILLed nats-server at %s, %s after a record write (%d writes seen so far), down %s, restarted on the same store and port %d",
			r+1, faults[r].UTC().Format(time.StampMicro), lag.Round(time.Microsecond), writes.n.Load(), round.outage, e.srv.Port)
	}
	awaitRuns(t, e.cl, e.js, l.snapshot(), 2*time.Minute, faults...)
	requireAlive(t, procs)
	// The events capture stream is in memory: the crash took it. The
	// coordinators (-event-capture), left running, must re-create it once
	// they are connected again.
	natstest.WaitFor(t, 30*time.Second, "the events stream re-created after the restarts", func() bool {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		defer scancel()
		_, err := e.js.Stream(sctx, layout.EventsStream(protocol.MustNames("")))
		return err == nil
	})
	requireCompletedAtMostOnce(t, e.js, demo.ChainName, demo.WorkflowName)
	t.Logf("nats-server SIGKILLed %d times under load, engine left running: %d runs, every one completed exactly once with its exact path",
		len(rounds), len(l.snapshot()))
}

// TestKillEverythingRepeatedly is issue 17's second fault: three times
// during load, nats-server, both coordinators and both workers are
// SIGKILLed together (right after a record write) and everything starts
// again on the same data. Every run must complete exactly once with its
// exact path.
func TestKillEverythingRepeatedly(t *testing.T) {
	e := newCrashEnv(t)
	procs := e.startEngine(t, 1)
	waitDefined(t, e.js, demo.ChainName)
	waitDefined(t, e.js, demo.WorkflowName)
	writes := watchRecordWrites(t, e.nc)
	l := newLoad()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const rounds = 3
	var faults []time.Time
	for r := 0; r < rounds; r++ {
		triggered := triggerRound(ctx, e, l, r, 150, 15)
		requireAlive(t, procs)
		lag := writes.faultAfter(t, 200, 2*time.Minute, func() {
			var wg sync.WaitGroup
			for _, kill := range append([]func(){e.srv.Kill}, kills(procs)...) {
				wg.Add(1)
				go func() { defer wg.Done(); kill() }()
			}
			wg.Wait()
		})
		faults = append(faults, time.Now())
		e.srv.Restart()
		waitRecovered(t, e.js)
		procs = e.startEngine(t, r+2)
		require.NoError(t, <-triggered)
		t.Logf("round %d: SIGKILLed nats-server, 2 coordinators and 2 workers together at %s, %s after a record write; all restarted on the same data",
			r+1, faults[r].UTC().Format(time.StampMicro), lag.Round(time.Microsecond))
	}
	awaitRuns(t, e.cl, e.js, l.snapshot(), 2*time.Minute, faults...)
	requireAlive(t, procs)
	requireCompletedAtMostOnce(t, e.js, demo.ChainName, demo.WorkflowName)
	t.Logf("everything SIGKILLed %d times under load: %d runs, every one completed exactly once with its exact path", rounds, len(l.snapshot()))
}

func kills(ps []*proctest.Proc) []func() {
	fs := make([]func(), len(ps))
	for i, p := range ps {
		fs[i] = p.Kill
	}
	return fs
}

// TestPauseCoordinatorAndWorkerPastAckWait is issue 17's third fault: a
// coordinator, then a worker, is SIGSTOPped for twice its ack wait under
// load (its inputs or commands are redelivered to the other one while it
// still holds them), then SIGCONTed (it carries on with what it held).
// Every run must complete exactly once with its exact path, and since
// every task here succeeds, no attempt may be counted as failed: no run
// fails with "attempt abandoned" or retries exhausted, and no task-retry
// event is published.
func TestPauseCoordinatorAndWorkerPastAckWait(t *testing.T) {
	e := newCrashEnv(t)
	procs := e.startEngine(t, 1) // coordinator-1.1, coordinator-1.2, worker-1.1, worker-1.2
	waitDefined(t, e.js, demo.ChainName)
	waitDefined(t, e.js, demo.WorkflowName)
	writes := watchRecordWrites(t, e.nc)

	var retried []string
	var mu sync.Mutex
	rsub, err := e.nc.Subscribe("cano.event.*.*."+string(protocol.EventTaskRetried), func(m *nats.Msg) {
		var ev protocol.Event
		if wirecodec.Decode(m.Data, &ev, 0) == nil {
			mu.Lock()
			retried = append(retried, fmt.Sprintf("run %s state %s step %d: %s", ev.RunID, ev.State, ev.Step, ev.Detail))
			mu.Unlock()
		}
	})
	require.NoError(t, err)
	defer func() { _ = rsub.Unsubscribe() }()
	// Every result published, as a core subscriber sees it: a result of a
	// successful task with attempts > 1 is a task run again because its
	// holder was paused (the broker cannot tell a paused process from a
	// dead one); measured and reported, not asserted.
	var okResults, okRepeated atomic.Int64
	ressub, err := e.nc.Subscribe(protocol.MustNames("").ResultWildcard(), func(m *nats.Msg) {
		var r protocol.TaskResult
		if wirecodec.Decode(m.Data, &r, 0) == nil && r.Status == protocol.ResultOK {
			okResults.Add(1)
			if r.Attempts > 1 {
				okRepeated.Add(1)
			}
		}
	})
	require.NoError(t, err)
	defer func() { _ = ressub.Unsubscribe() }()

	l := newLoad()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ackWait, pause = 2 * time.Second, 4 * time.Second
	var faults []time.Time
	for r, p := range []*proctest.Proc{procs[0], procs[2]} {
		triggered := triggerRound(ctx, e, l, r, 150, 15)
		lag := writes.faultAfter(t, 150, 2*time.Minute, p.Pause)
		faults = append(faults, time.Now())
		time.Sleep(pause) // the fault: paused for twice the ack wait
		p.Resume()
		require.NoError(t, <-triggered)
		t.Logf("SIGSTOPped %s at %s, %s after a record write, for %s (ack wait %s), then SIGCONT",
			p.Name, faults[r].UTC().Format(time.StampMicro), lag.Round(time.Microsecond), pause, ackWait)
	}
	awaitRuns(t, e.cl, e.js, l.snapshot(), 2*time.Minute, faults...)
	requireAlive(t, procs)
	requireCompletedAtMostOnce(t, e.js, demo.ChainName, demo.WorkflowName)
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, retried, "task attempts counted as failed although every task succeeded")
	t.Logf("coordinator and worker each paused for %s (ack wait %s): %d runs completed exactly once with their exact path; "+
		"no task-retry event; %d of %d successful results published carried attempts > 1 (run again after the pause)",
		pause, ackWait, len(l.snapshot()), okRepeated.Load(), okResults.Load())
}

// TestInputBackWithDeliveryCountOne is the deterministic variant of the
// broker crash: the state a SIGKILLed nats-server can leave behind, built
// step by step. A coordinator takes an input, writes the run record and
// publishes the command the record now owes; the crash loses the command
// and the input's delivery count, so the input comes back with
// NumDelivered == 1 and nothing else is left for the run.
//
// Built here: run a (trigger replayed; record at s0, step 0) and run b
// (result of step 0 replayed; record at s1, step 1). The coordinator is
// SIGKILLed, the tasks stream purged (the lost commands), nats-server
// SIGKILLed and restarted (its de-duplication window is rebuilt from what
// it stored, so the purged commands are forgotten as lost ones are), and
// the two inputs are stored again: each is delivered for the first time,
// count 1. A new coordinator and a worker must then complete both runs
// with their exact paths; a coordinator that trusts the count acks both as
// duplicates and leaves them stuck.
func TestInputBackWithDeliveryCountOne(t *testing.T) {
	e := newCrashEnv(t)
	names := protocol.MustNames("")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A worker registers the definitions and leaves: commands stay queued.
	w := proctest.Start(t, "worker-defs", e.worker, "-s", e.srv.URL, "-log-format", "json", "-id", "worker-defs")
	waitDefined(t, e.js, demo.ChainName)
	if err := w.Stop(30 * time.Second); err != nil {
		// Not this test's subject: a worker stopped while it was still
		// creating its consumers exits 1 ("context canceled").
		t.Logf("worker-defs stopped: %v: %s", err, w.Output())
	}
	c1 := proctest.Start(t, "coordinator-1", e.coord, "-s", e.srv.URL, "-log-format", "json", "-ack-wait", "2s", "-event-capture")

	trigger := func(runID string) *nats.Msg {
		data, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.ChainName, RunID: runID})
		require.NoError(t, err)
		m := nats.NewMsg(names.TriggerSubject(demo.ChainName))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, "trig:"+runID)
		return m
	}
	result := func(runID string) *nats.Msg {
		data, err := wirecodec.Encode(&protocol.TaskResult{V: protocol.SchemaVersion, RunID: runID, Step: 0, Branch: -1,
			Status: protocol.ResultOK, Next: "s1", Attempts: 1, Worker: "fault-test"})
		require.NoError(t, err)
		m := nats.NewMsg(names.ResultSubject(runID))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, layout.ResultMsgID(runID, 0, -1))
		return m
	}
	waitRecord := func(runID, state string, step uint32) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			rec, err := e.cl.Get(ctx, runID)
			if err == nil && rec.State == state && rec.Step == int(step) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s never reached %s step %d: %+v %v", runID, state, step, rec, err)
			}
			time.Sleep(20 * time.Millisecond) // poll interval, bounded by deadline
		}
	}
	publish := func(m *nats.Msg) {
		t.Helper()
		ack, err := e.js.PublishMsg(ctx, m)
		require.NoError(t, err)
		require.False(t, ack.Duplicate, "%s stored as a duplicate: the setup did not reach the crash state", m.Subject)
	}

	publish(trigger("a"))
	publish(trigger("b"))
	waitRecord("a", "s0", 0)
	waitRecord("b", "s0", 0)
	publish(result("b")) // as a worker would: s0 done, go to s1
	waitRecord("b", "s1", 1)
	// Every input acknowledged (the work streams drop what is acked): the
	// record writes are done and the inputs gone, as before the crash.
	natstest.WaitFor(t, 30*time.Second, "triggers and results acknowledged", func() bool {
		for _, s := range []string{layout.TriggersStream(names), layout.ResultsStream(names)} {
			st, err := e.js.Stream(ctx, s)
			if err != nil || st.CachedInfo().State.Msgs != 0 {
				return false
			}
		}
		return true
	})
	c1.Kill()

	tasks, err := e.js.Stream(ctx, layout.TasksStream(names))
	require.NoError(t, err)
	require.NoError(t, tasks.Purge(ctx))
	e.srv.Kill()
	e.srv.Restart()
	waitRecovered(t, e.js)
	for _, s := range []string{layout.TriggersStream(names), layout.ResultsStream(names), layout.TasksStream(names), layout.TimersStream(names)} {
		st, err := e.js.Stream(ctx, s)
		require.NoError(t, err)
		require.Zero(t, st.CachedInfo().State.Msgs, "stream %s after the crash", s)
	}
	t.Logf("crash state: run a running at s0 step 0, run b running at s1 step 1, every work stream empty")

	publish(trigger("a"))
	publish(result("b"))
	t.Logf("the trigger of a and the step-0 result of b stored again: each will be delivered with NumDelivered == 1")
	procs := []*proctest.Proc{
		proctest.Start(t, "coordinator-2", e.coord, "-s", e.srv.URL, "-log-format", "json", "-ack-wait", "2s", "-event-capture"),
		proctest.Start(t, "worker-2", e.worker, "-s", e.srv.URL, "-log-format", "json", "-ack-wait", "2s", "-id", "worker-2"),
	}
	awaitRuns(t, e.cl, e.js, map[string]runWant{"a": chainWant(), "b": chainWant()}, time.Minute)
	requireAlive(t, procs)
	t.Logf("both runs re-driven from an input delivered with count 1 and completed with the exact %d-state path", len(chainPath()))
}
