package fault

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/proctest"
	"github.com/cano-nats/cano/internal/wire/faults"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
	"github.com/cano-nats/cano/pkg/protocol"
)

// runStore opens the shared store the demo tasks record their attempts in.
func (b *bundle) runStore(t *testing.T) kvstore.Store {
	t.Helper()
	_, js := b.srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := natskv.New(ctx, js, natskv.Config{Bucket: layout.StoreBucket(protocol.MustNames(""))})
	require.NoError(t, err)
	return st
}

// attempts returns the attempt records a run's task appended (none if it
// never ran).
func attempts(t *testing.T, st kvstore.Store, runID string) []faults.AttemptRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := kvstore.GetAs[[]faults.AttemptRecord](ctx, kvstore.Scoped(st, kvstore.RunScope(runID)), faults.AttemptsKey)
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil
	}
	require.NoError(t, err)
	return recs
}

// waitStarted waits until each worker process logged that it started.
func waitStarted(t *testing.T, procs ...*proctest.Proc) {
	t.Helper()
	for _, p := range procs {
		natstest.WaitFor(t, 30*time.Second, p.Name+" started", func() bool {
			return strings.Contains(p.Output(), "worker started")
		})
	}
}

func (b *bundle) triggerWith(t *testing.T, workflow string, in faults.FaultInput, n int) []string {
	t.Helper()
	b.waitDefined(t, workflow) // the fault workflows register after the demo ones
	ids := make([]string, n)
	for i := range ids {
		id, err := b.client.Trigger(context.Background(), workflow, &client.TriggerOpts{Input: in, NoWait: true})
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

type awaited struct {
	id  string
	out *client.Run
	err error
}

// awaitEach awaits every run concurrently and sends each outcome on the
// returned channel as it ends.
func (b *bundle) awaitEach(ctx context.Context, ids []string) <-chan awaited {
	ch := make(chan awaited, len(ids))
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := b.client.Await(ctx, id)
			ch <- awaited{id: id, out: out, err: err}
		}()
	}
	return ch
}

func TestKillWorkerDuringSecondAttempt(t *testing.T) {
	b := setup(t)
	b.startCoordinator(t, "coordinator-1")
	w1 := b.startWorker(t, "worker-1")
	b.waitRegistered(t)
	st := b.runStore(t)
	// Open the client's runs bucket before concurrent awaits (client.runsKV
	// caches it without a lock).
	_, _ = b.client.Get(context.Background(), "warmup")

	// Attempt 1 fails, attempt 2 hangs (on worker-1, the only worker), attempt 3 succeeds.
	const n = 4
	ids := b.triggerWith(t, faults.FlakyName, faults.FaultInput{FailUntil: 3, HangAttempt: 2}, n)
	for _, id := range ids {
		natstest.WaitFor(t, 60*time.Second, "run "+id+" in its 2nd attempt", func() bool {
			return len(attempts(t, st, id)) >= 2
		})
	}
	w2 := b.startWorker(t, "worker-2")
	waitStarted(t, w2)
	w1.Kill()
	t.Logf("killed worker-1 (SIGKILL) with %d runs in their 2nd attempt", n)

	b.awaitAll(t, ids, []string{"call", "done"}, 2*time.Minute)
	maxAttempts := faults.FlakyRetries + 1
	for _, id := range ids {
		recs := attempts(t, st, id)
		require.Len(t, recs, maxAttempts, "run %s: %+v", id, recs)
		for i, r := range recs {
			require.Equal(t, i+1, r.Attempt, "run %s: attempts in order, none repeated or skipped", id)
		}
		require.Equal(t, recs[0].PID, recs[1].PID, "attempts 1 and 2 on worker-1")
		require.NotEqual(t, recs[1].PID, recs[2].PID, "run %s: attempt 3 on another worker process", id)
		rec, err := b.client.Get(context.Background(), id)
		require.NoError(t, err)
		var attempt int
		require.NoError(t, rec.Output(&attempt))
		require.Equal(t, maxAttempts, attempt)
	}
	t.Logf("kill a worker during attempt 2: %d runs completed on attempt 3 in another process, %d attempts each (the maximum)", n, maxAttempts)
}

func TestBreakerSharedByThreeWorkers(t *testing.T) {
	b := setup(t)
	b.startCoordinator(t, "coordinator-1")
	w1 := b.startWorker(t, "worker-1")
	w2 := b.startWorker(t, "worker-2")
	w3 := b.startWorker(t, "worker-3")
	b.waitRegistered(t)
	waitStarted(t, w1, w2, w3)
	st := b.runStore(t)
	// Open the client's runs bucket before concurrent awaits (client.runsKV
	// caches it without a lock).
	_, _ = b.client.Get(context.Background(), "warmup")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	breakerState := func() client.BreakerInfo {
		t.Helper()
		states, err := b.client.Breakers(ctx)
		require.NoError(t, err)
		for _, s := range states {
			if s.Name == faults.GuardedBreaker {
				return s
			}
		}
		t.Fatalf("breaker %s not listed in %+v", faults.GuardedBreaker, states)
		return client.BreakerInfo{}
	}
	var ran []string // runs whose task body ran

	// 1. Failures trip it.
	pids := map[int]bool{}
	for range faults.GuardedFailureThreshold {
		id := b.triggerWith(t, faults.GuardedName, faults.FaultInput{Fail: true}, 1)[0]
		_, err := b.client.Await(ctx, id)
		require.ErrorIs(t, err, fsm.ErrTaskExecution)
		require.ErrorContains(t, err, faults.ErrDependency.Error())
		recs := attempts(t, st, id)
		require.Len(t, recs, 1)
		pids[recs[0].PID] = true
		ran = append(ran, id)
	}
	open := breakerState()
	require.Equal(t, client.BreakerOpen, open.State)
	t.Logf("%d failures (on %d worker processes) tripped %s: open until %s", faults.GuardedFailureThreshold, len(pids),
		faults.GuardedBreaker, open.OpenUntil.Format(time.RFC3339Nano))

	// 2. While open, calls fail fast with CircuitOpen on every worker: the task never runs.
	fast := b.triggerWith(t, faults.GuardedName, faults.FaultInput{}, 9)
	ch := b.awaitEach(ctx, fast)
	for range fast {
		a := natstest.Recv(t, ch, time.Minute)
		require.ErrorIs(t, a.err, fsm.ErrCircuitOpen, "run %s", a.id)
		require.Empty(t, attempts(t, st, a.id), "run %s: no attempt while open", a.id)
	}
	require.True(t, time.Now().Before(open.OpenUntil), "the fail-fast runs ended within the cool-down")
	t.Logf("%d runs while open: all failed fast with CircuitOpen, none ran", len(fast))

	// 3. After the cool-down exactly one probe runs cluster-wide.
	natstest.WaitFor(t, faults.GuardedResetTimeout+30*time.Second, "the cool-down", func() bool {
		return time.Now().After(open.OpenUntil)
	})
	const callers = 12
	probeRuns := b.triggerWith(t, faults.GuardedName, faults.FaultInput{Hold: true}, callers)
	ch = b.awaitEach(ctx, probeRuns)
	rejected := map[string]bool{}
	for range callers - 1 {
		a := natstest.Recv(t, ch, time.Minute)
		require.ErrorIs(t, a.err, fsm.ErrCircuitOpen, "run %s: only the probe is admitted", a.id)
		rejected[a.id] = true
	}
	var probe string
	for _, id := range probeRuns {
		if !rejected[id] {
			probe = id
		}
		if rejected[id] {
			require.Empty(t, attempts(t, st, id), "run %s: rejected, never ran", id)
		}
	}
	natstest.WaitFor(t, 30*time.Second, "the probe running", func() bool { return len(attempts(t, st, probe)) == 1 })
	half := breakerState()
	require.Equal(t, client.BreakerHalfOpen, half.State)
	require.Equal(t, 1, half.HalfOpenInFlight)
	select {
	case a := <-ch:
		t.Fatalf("the held probe %s ended early: %v", a.id, a.err)
	default:
	}

	// 4. The probe's success closes it.
	require.NoError(t, kvstore.PutValue(ctx, kvstore.Scoped(st, kvstore.RunScope(probe)), faults.ReleaseKey, true))
	a := natstest.Recv(t, ch, time.Minute)
	require.Equal(t, probe, a.id)
	require.NoError(t, a.err)
	require.Equal(t, client.BreakerClosed, breakerState().State)
	after := b.triggerWith(t, faults.GuardedName, faults.FaultInput{}, 3)
	b.awaitAll(t, after, []string{"call", "done"}, time.Minute)
	ran = append(ran, after...)

	total := 0
	for _, id := range append(append(append([]string{}, ran...), fast...), probeRuns...) {
		total += len(attempts(t, st, id))
	}
	require.Equal(t, faults.GuardedFailureThreshold+1+len(after), total, "task bodies that ran: the tripping failures, one probe, the calls after")
	t.Logf("after the cool-down %d concurrent calls: 1 probe ran, %d failed fast; the probe's success closed %s; %d later calls succeeded",
		callers, callers-1, faults.GuardedBreaker, len(after))
}
