package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

// retryDelays parses the delays the worker announced in a run's retry
// events ("attempt N failed, next in D: err").
func retryDelays(t *testing.T, details []string) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, len(details))
	for _, d := range details {
		_, rest, ok := strings.Cut(d, "next in ")
		require.True(t, ok, "retry event detail %q", d)
		ds, _, ok := strings.Cut(rest, ":")
		require.True(t, ok, "retry event detail %q", d)
		delay, err := time.ParseDuration(ds)
		require.NoError(t, err)
		out = append(out, delay)
	}
	return out
}

func TestRetriesAndTimeouts(t *testing.T) {
	t.Parallel()

	flaky := newScript(func(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
		if tc.Attempt < 3 {
			return fsm.Result{}, errors.New("flaky: not yet")
		}
		return fsm.NextWith("done", tc.Attempt), nil
	})
	// Attempt 1 ignores its context until released, then "succeeds" late.
	release, lateDone := make(chan struct{}), make(chan struct{})
	lateOnce := newScript(func(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
		if tc.Attempt == 1 {
			<-release
			defer close(lateDone)
			return fsm.NextWith("done", "late"), nil
		}
		return fsm.NextWith("done", "on-time"), nil
	})
	// Every attempt ignores its context until the test ends.
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	alwaysLate := newScript(func(_ context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
		<-stuck
		return fsm.NextWith("done", "late"), nil
	})
	permanent := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
		return fsm.Result{}, fsm.Permanent(errors.New("bad request"))
	})
	panics := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
		panic("boom")
	})

	const base = 50 * time.Millisecond
	b := setup(t, worker.Config{},
		oneTask("flaky", flaky, fsm.TaskConfig{Retry: fsm.RetryExponentialCustom(3, base, 2, time.Second, 0.1)}),
		oneTask("late_once", lateOnce, fsm.TaskConfig{Retry: fsm.RetryFixed(2, 20*time.Millisecond), AttemptTimeout: 100 * time.Millisecond}),
		oneTask("always_late", alwaysLate, fsm.TaskConfig{Retry: fsm.RetryFixed(1, 20*time.Millisecond), AttemptTimeout: 100 * time.Millisecond}),
		oneTask("permanent", permanent, fsm.TaskConfig{}),
		oneTask("panics", panics, fsm.TaskConfig{}),
	)

	t.Run("flaky task completes on its third attempt, delays within the jitter bounds", func(t *testing.T) {
		t.Parallel()
		ctx := awaitCtx(t)
		runID := "r" + nuid.Next()
		retries := make(chan *nats.Msg, 8)
		sub, err := b.nc.ChanSubscribe(protocol.MustNames("").EventSubject("flaky", runID, protocol.EventTaskRetried), retries)
		require.NoError(t, err)
		defer func() { _ = sub.Unsubscribe() }()

		out, err := b.client.Run(ctx, "flaky", &client.TriggerOpts{RunID: runID})
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, out.Status)
		var attempt int
		require.NoError(t, out.Output(&attempt))
		require.Equal(t, 3, attempt)

		starts := b.log.starts(runID)
		require.Len(t, starts, 3)
		var details []string
		for range 2 {
			m := natstest.Recv(t, retries, 10*time.Second)
			var ev protocol.Event
			require.NoError(t, wirecodec.Decode(m.Data, &ev, 0))
			details = append(details, ev.Detail)
		}
		delays := retryDelays(t, details)
		// delay before retry k = base·2^k·(1 ± 10 %)
		bounds := [][2]time.Duration{{45 * time.Millisecond, 55 * time.Millisecond}, {90 * time.Millisecond, 110 * time.Millisecond}}
		for k, d := range delays {
			require.GreaterOrEqual(t, d, bounds[k][0], "delay %d", k)
			require.LessOrEqual(t, d, bounds[k][1], "delay %d", k)
			gap := starts[k+1].Sub(starts[k])
			// The broker cannot redeliver before the delay; scheduling
			// latency on a loaded machine only adds to it.
			require.GreaterOrEqual(t, gap, d, "gap before attempt %d", k+2)
			require.Less(t, gap, d+10*time.Second, "gap before attempt %d", k+2)
		}
		require.Less(t, delays[0], delays[1])
		require.True(t, starts[0].Before(starts[1]) && starts[1].Before(starts[2]))
		t.Logf("attempt gaps %v, %v for announced delays %v", starts[1].Sub(starts[0]), starts[2].Sub(starts[1]), delays)
	})

	t.Run("attempt past its timeout counts as a timeout, is retried, its late result is ignored", func(t *testing.T) {
		t.Parallel()
		ctx := awaitCtx(t)
		runID := "r" + nuid.Next()
		results := resultsSent(t, b.nc, runID)

		out, err := b.client.Run(ctx, "late_once", &client.TriggerOpts{RunID: runID})
		require.NoError(t, err)
		var got string
		require.NoError(t, out.Output(&got))
		require.Equal(t, "on-time", got)
		ends := b.log.ends(runID)
		require.Len(t, ends, 2)
		require.ErrorIs(t, ends[0], fsm.ErrTimeout)
		require.NoError(t, ends[1])

		// Let the abandoned attempt return its "success" now.
		close(release)
		natstest.Recv(t, lateDone, 10*time.Second)
		require.NoError(t, b.nc.Flush())
		rec, err := b.client.Get(ctx, runID)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, rec.Status)
		require.Equal(t, []string{"work", "done"}, rec.Path)
		var recOut string
		require.NoError(t, rec.Output(&recOut))
		require.Equal(t, "on-time", recOut)
		require.Len(t, b.log.ends(runID), 2, "the late return is not an attempt outcome")
		require.NoError(t, b.nc.Flush())
		// The subscriptions' callbacks run on goroutines of their own: under
		// load the on-time result may not be counted yet (CI, 2026-12-02).
		natstest.WaitFor(t, 10*time.Second, "the on-time result counted", func() bool { return results() >= 1 })
		require.Equal(t, 1, results(), "exactly one result sent for the run")
	})

	t.Run("every attempt timing out ends in RetryExhausted with a Timeout cause", func(t *testing.T) {
		t.Parallel()
		ctx := awaitCtx(t)
		runID := "r" + nuid.Next()
		out, err := b.client.Run(ctx, "always_late", &client.TriggerOpts{RunID: runID})
		require.Error(t, err)
		require.Equal(t, client.RunFailed, out.Status)
		require.ErrorIs(t, err, fsm.ErrRetryExhausted)
		var re *fsm.RetryExhaustedError
		require.ErrorAs(t, err, &re)
		require.EqualValues(t, 2, re.Attempts)
		require.ErrorIs(t, re.Cause, fsm.ErrTimeout)
		ends := b.log.ends(runID)
		require.Len(t, ends, 2)
		for _, e := range ends {
			require.ErrorIs(t, e, fsm.ErrTimeout)
		}
	})

	t.Run("a permanent error skips the remaining attempts", func(t *testing.T) {
		t.Parallel()
		ctx := awaitCtx(t)
		runID := "r" + nuid.Next()
		_, err := b.client.Run(ctx, "permanent", &client.TriggerOpts{RunID: runID})
		require.Error(t, err)
		require.NotErrorIs(t, err, fsm.ErrRetryExhausted)
		require.Contains(t, err.Error(), "bad request")
		require.Len(t, b.log.ends(runID), 1, "one attempt of four")
	})

	t.Run("a panic is not retried", func(t *testing.T) {
		t.Parallel()
		ctx := awaitCtx(t)
		runID := "r" + nuid.Next()
		_, err := b.client.Run(ctx, "panics", &client.TriggerOpts{RunID: runID})
		require.Error(t, err)
		require.ErrorIs(t, err, fsm.ErrTaskExecution)
		require.NotErrorIs(t, err, fsm.ErrRetryExhausted)
		require.Contains(t, err.Error(), "panic: boom")
		require.Len(t, b.log.ends(runID), 1)
	})
}

// resultsSent counts the results of runID the worker sends, to the results
// stream or as requests to coordinators (protocol.Names.RPCResultSubject).
func resultsSent(t *testing.T, nc *nats.Conn, runID string) (count func() int) {
	t.Helper()
	names := protocol.MustNames("")
	var mu sync.Mutex
	n := 0
	for _, subject := range []string{names.ResultSubject(runID), names.RPCResultSubject("*"), names.RPCResultAnySubject()} {
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
			var r protocol.TaskResult
			if wirecodec.Decode(m.Data, &r, 0) == nil && r.RunID == runID {
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	require.NoError(t, nc.Flush())
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}
