package worker_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/stretchr/testify/require"

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

// setupRPC is setup with the events capture stream (a completed event
// re-published is stored once) and the coordinator configured by ccfg.
func setupRPC(t *testing.T, wcfg worker.Config, ccfg coordinator.Config, workflows ...worker.Definer) *testBundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{EventCapture: true})
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := &fsm.Registry{}
	fsm.Register[scripted](reg)
	l := newAttemptLog()
	wcfg.Registry, wcfg.Workflows, wcfg.Hooks = reg, workflows, l.hooks()
	w, err := worker.New(nc, wcfg)
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, ccfg)
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	_, _ = cl.Get(ctx, "warmup") // see setupFunc
	return &testBundle{srv: srv, nc: nc, js: js, client: cl, log: l, worker: w}
}

// storedResults collects the results published to the results stream's
// subjects (a result request travels on other subjects).
type storedResults struct {
	mu     sync.Mutex
	resent map[string][]uint32 // guarded by mu; run id → steps of results marked resent
	plain  int                 // guarded by mu; results not marked resent
}

func watchStoredResults(t *testing.T, nc *nats.Conn) *storedResults {
	t.Helper()
	s := &storedResults{resent: map[string][]uint32{}}
	sub, err := nc.Subscribe(protocol.MustNames("").ResultWildcard(), func(m *nats.Msg) {
		var r protocol.TaskResult
		if err := wirecodec.Decode(m.Data, &r, 0); err != nil {
			t.Errorf("a result on the results stream does not decode: %v", err)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if m.Header.Get(protocol.HeaderResent) != "" {
			s.resent[r.RunID] = append(s.resent[r.RunID], r.Step)
		} else {
			s.plain++
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return s
}

func (s *storedResults) counts() (resent, plain int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, steps := range s.resent {
		resent += len(steps)
	}
	return resent, s.plain
}

func (s *storedResults) resentSteps(runID string) []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint32(nil), s.resent[runID]...)
}

// completedEvents counts the completed events of workflow stored in the
// events capture stream, per run, once want runs have one (or a bounded
// wait has passed: the caller's checks say what is missing).
func completedEvents(t *testing.T, js jetstream.JetStream, workflow string, want int) map[string]int {
	t.Helper()
	n := protocol.MustNames("")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var counts map[string]int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) { // a bounded poll
		counts = map[string]int{}
		cons, err := js.OrderedConsumer(ctx, layout.EventsStream(n), jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{n.EventSubject(workflow, "*", protocol.EventCompleted)}})
		require.NoError(t, err)
		info, err := cons.Info(ctx)
		require.NoError(t, err)
		for range info.NumPending {
			m, err := cons.Next()
			require.NoError(t, err)
			var ev protocol.Event
			require.NoError(t, wirecodec.Decode(m.Data(), &ev, 0))
			counts[ev.RunID]++
		}
		if len(counts) >= want || time.Now().After(deadline) {
			return counts
		}
	}
}

// The coordinator applies a result sent as a request, stores what the run
// owes (the next command) and answers; the answer is lost on its way to the
// worker. The worker's request times out, and it publishes the result to
// the results stream marked resent; the coordinator finds it applied and
// re-publishes what the run owes, which the tasks stream de-duplicates. The
// run completes once, each task ran once, and the record counts each
// attempt once.
func TestResultAnswerLost(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ran := map[string]int{} // state → attempts started
	step := func(state, next string) string {
		return newScript(func(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
			mu.Lock()
			ran[state]++
			mu.Unlock()
			return fsm.NextWith(next, state), nil
		})
	}
	wf := fsm.New[string]("answerlost", "a").
		Register("a", scripted{Name: step("a", "b")}, fsm.TaskConfig{Retry: fsm.RetryNone()}).
		Register("b", scripted{Name: step("b", "done")}, fsm.TaskConfig{Retry: fsm.RetryNone()}).
		Exit("done")
	// The answer to step a's result is lost: the first one for step 0.
	var lost atomic.Int32
	loseStepA := func(cmd *protocol.TaskCommand) bool { return cmd.Step == 0 && lost.CompareAndSwap(0, 1) }
	wcfg := worker.LosingAnswers(worker.WithResultTimeout(worker.Config{AckWait: 5 * time.Second}, time.Second), loseStepA)
	b := setupRPC(t, wcfg, coordinator.Config{Shards: 4}, wf)
	stored := watchStoredResults(t, b.nc)

	ctx := awaitCtx(t)
	runID := "r" + nuid.Next()
	_, err := b.client.Trigger(ctx, "answerlost", &client.TriggerOpts{RunID: runID, NoWait: true})
	require.NoError(t, err)
	out, err := b.client.Await(ctx, runID)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	require.Equal(t, []string{"a", "b", "done"}, out.Path)
	var got string
	require.NoError(t, out.Output(&got))
	require.Equal(t, "b", got)
	// The answer may reach the worker after the run has completed: step b's
	// command can come before it (another subscription).
	natstest.WaitFor(t, 30*time.Second, "step a's answer reached the worker, and was lost", func() bool { return lost.Load() == 1 })

	// The unanswered result, step a's, went to the stream marked resent.
	natstest.WaitFor(t, 30*time.Second, "step a's result resent to the stream", func() bool {
		return len(stored.resentSteps(runID)) > 0
	})
	require.Equal(t, uint32(0), stored.resentSteps(runID)[0], "the resent result is step a's")
	_, plain := stored.counts()
	require.Zero(t, plain, "no result went to the stream unmarked (a coordinator listened)")

	// Its re-published command did not run b again; nothing is left held.
	names := protocol.MustNames("")
	cons, err := b.js.Consumer(ctx, layout.TasksStream(names), layout.TaskConsumer(fsm.QueueDefault, scripted{}.Kind()))
	require.NoError(t, err)
	natstest.WaitFor(t, 30*time.Second, "the commands settled", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	mu.Lock()
	require.Equal(t, map[string]int{"a": 1, "b": 1}, ran, "each task ran once")
	mu.Unlock()
	require.Len(t, b.log.starts(runID), 2, "one attempt per step")
	rec, err := b.client.Get(ctx, runID)
	require.NoError(t, err)
	require.EqualValues(t, 2, rec.Totals.Attempts, "the record counts each attempt once")
	counts := completedEvents(t, b.js, "answerlost", 1)
	require.Equal(t, map[string]int{runID: 1}, counts, "one completed event")
	t.Logf("answer lost: step a's result timed out, went to the stream resent (steps resent %v); run completed once, path %v, each task ran once",
		stored.resentSteps(runID), out.Path)
}

// A coordinator holds at most MaxRequests result requests; one over the
// bound is refused at once (protocol.HeaderResultError) and the worker
// publishes the result to the results stream, which absorbs the overload.
// With MaxRequests 1 and many runs at once, some results are refused: they
// reach the stream marked resent, the refusal is logged, and every run
// completes once with its exact path, each task having run once.
func TestResultRequestsOverload(t *testing.T) {
	t.Parallel()
	task := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
		return fsm.NextWith("done", "ok"), nil
	})
	sink := &natstest.LogBuffer{}
	ccfg := coordinator.Config{Shards: 4, MaxRequests: 1, Logger: slog.New(slog.NewTextHandler(sink, nil))}
	b := setupRPC(t, worker.Config{AckWait: 5 * time.Second, Concurrency: 32}, ccfg,
		oneTask("overload", task, fsm.TaskConfig{Retry: fsm.RetryNone()}))
	stored := watchStoredResults(t, b.nc)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const runs = 300
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = "r" + nuid.Next()
		_, err := b.client.Trigger(ctx, "overload", &client.TriggerOpts{RunID: ids[i], NoWait: true})
		require.NoError(t, err)
	}
	for _, id := range ids {
		out, err := b.client.Await(ctx, id)
		require.NoError(t, err, "run %s", id)
		require.Equal(t, client.RunCompleted, out.Status)
		require.Equal(t, []string{"work", "done"}, out.Path)
		require.Len(t, b.log.starts(id), 1, "run %s: its task ran once", id)
	}
	counts := completedEvents(t, b.js, "overload", runs)
	for _, id := range ids {
		require.Equal(t, 1, counts[id], "run %s: one completed event", id)
	}
	resent, plain := stored.counts()
	require.NotZero(t, resent, "some result requests were refused and their results stored")
	require.Zero(t, plain, "no result went to the stream unmarked (a coordinator listened)")
	require.NotZero(t, strings.Count(sink.String(), "result request refused: too many in flight"), "the coordinator logged the refusals")
	t.Logf("MaxRequests 1, %d runs, worker concurrency 32: %d results refused and sent to the results stream, %d by request; every run completed once",
		runs, resent, runs-resent)
}
