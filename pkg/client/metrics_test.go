package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// failer always fails (retryable).
type failer struct{}

func (failer) Kind() string { return "failer" }
func (failer) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Result{}, errors.New("card declined")
}

// records is a slog handler that keeps every record.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r } // attrs of With are not needed here
func (r *records) WithGroup(string) slog.Handler      { return r }

// find returns the attributes of the first record with msg at level.
func (r *records) find(level slog.Level, msg string) (map[string]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.got {
		if rec.Level == level && rec.Message == msg {
			attrs := map[string]string{}
			rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
			return attrs, true
		}
	}
	return nil, false
}

// TestMetricsAndFailureLog runs a few workflows against a coordinator and a
// worker that share a Prometheus registry, scrapes /metrics through
// httptest and finds the counters with the right values; the failed run is
// logged at warn by the coordinator with its context.
func TestMetricsAndFailureLog(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	ctx := awaitCtx(t)
	reg := prometheus.NewRegistry()
	logs := &records{}

	fsmReg := &fsm.Registry{}
	fsm.Register[step](fsmReg)
	fsm.Register[sleeper](fsmReg)
	fsm.Register[failer](fsmReg)
	defs := []worker.Definer{
		fsm.New[S]("chain", SA).Register(SA, step{SB}).Register(SB, step{SC}).Register(SC, step{SDone}).Exit(SDone),
		fsm.New[S]("slow", SA).Register(SA, sleeper{D: time.Minute}).Exit(SDone).TotalTimeout(time.Hour), // its cancel makes the deadline moot
		fsm.New[S]("charge", SA).Register(SA, failer{}, fsm.TaskConfig{Retry: fsm.RetryFixed(1, 10*time.Millisecond)}).Exit(SDone),
		fsm.New[S]("late", SA).Register(SA, sleeper{D: time.Minute}, fsm.TaskConfig{Retry: fsm.RetryNone(), AttemptTimeout: 100 * time.Millisecond}).Exit(SDone),
	}
	w, err := worker.New(nc, worker.Config{Registry: fsmReg, Workflows: defs, AckWait: 5 * time.Second, Metrics: reg})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 4, Metrics: reg, Logger: slog.New(logs)})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	_, err = coordinator.New(nc, coordinator.Config{Metrics: reg})
	require.NoError(t, err, "a second coordinator on the registry (a retried start) shares the counters")
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	for range 2 {
		_, err := cl.Run(ctx, "chain", nil)
		require.NoError(t, err)
	}
	failedID, err := cl.Trigger(ctx, "charge", nil)
	require.NoError(t, err)
	_, err = cl.Await(ctx, failedID)
	require.ErrorIs(t, err, fsm.ErrRetryExhausted)
	_, err = cl.Run(ctx, "late", nil)
	require.ErrorIs(t, err, fsm.ErrTimeout)
	id, err := cl.Trigger(ctx, "slow", nil)
	require.NoError(t, err)
	// Cancel once the attempt runs: a notice that comes before the command
	// drops it unstarted, with no attempt to count.
	natstest.WaitFor(t, 30*time.Second, "the slow task running", func() bool {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "cano_worker_tasks_in_flight" && len(mf.GetMetric()) > 0 {
				return mf.GetMetric()[0].GetGauge().GetValue() == 1
			}
		}
		return false
	})
	require.NoError(t, cl.Cancel(ctx, id, "test"))
	_, err = cl.Await(ctx, id)
	require.ErrorIs(t, err, fsm.ErrCancelled)
	_, err = js.Publish(ctx, "cano.trigger.chain", []byte("not a trigger"))
	require.NoError(t, err)

	web := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(web.Close)
	scrape := func() string {
		resp, err := http.Get(web.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(body)
	}
	want := []string{
		`cano_coordinator_runs_started_total{workflow="chain"} 2`,
		`cano_coordinator_runs_started_total{workflow="charge"} 1`,
		`cano_coordinator_runs_finished_total{status="completed",workflow="chain"} 2`,
		`cano_coordinator_runs_finished_total{status="failed",workflow="charge"} 1`,
		`cano_coordinator_runs_finished_total{status="failed",workflow="late"} 1`,
		`cano_coordinator_runs_finished_total{status="cancelled",workflow="slow"} 1`,
		`cano_coordinator_transitions_total{workflow="chain"} 6`,
		`cano_coordinator_run_duration_seconds_count{status="completed",workflow="chain"} 2`,
		`cano_coordinator_dead_letters_total{source="trigger"} 1`,
		`cano_coordinator_dead_letters_total{source="result"} 0`, // there from the start, for alerts
		`cano_worker_dead_letters_total{source="task"} 0`,
		`cano_coordinator_runs_stalled_total 0`,
		`cano_coordinator_timers_unscheduled_total{outcome="removed"} 1`,
		`cano_coordinator_timers_unscheduled_total{outcome="dropped"} 0`,
		`cano_coordinator_consumer_pending{stream="CANO_TRIGGERS"} 0`,
		`cano_worker_task_attempts_total{kind="step",outcome="succeeded"} 6`,
		`cano_worker_task_attempts_total{kind="failer",outcome="failed"} 2`,
		`cano_worker_task_retries_total{kind="failer"} 1`,
		`cano_worker_task_attempts_total{kind="sleeper",outcome="timeout"} 1`,
		`cano_worker_task_timeouts_total{kind="sleeper"} 1`,
		`cano_worker_task_attempts_total{kind="sleeper",outcome="cancelled"} 1`,
		`cano_worker_task_duration_seconds_count{kind="step",outcome="succeeded"} 6`,
		`cano_worker_tasks_in_flight 0`,
		`cano_worker_consumer_pending{consumer=`,
	}
	// Poll: the cancelled attempt ends after its run does.
	var body string
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		body, missing = scrape(), nil
		for _, line := range want {
			if !strings.Contains(body, line) {
				missing = append(missing, line)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // poll interval within the bounded deadline
	}
	require.Empty(t, missing, "missing from /metrics; scraped:\n%s", grepCano(body))
	require.NotContains(t, body, failedID, "no run ids in labels")

	attrs, ok := logs.find(slog.LevelWarn, "run failed")
	require.True(t, ok, "the failed run is logged at warn")
	require.Equal(t, failedID, attrs["run_id"])
	require.Equal(t, "charge", attrs["workflow"])
	require.Equal(t, "a", attrs["state"])
	require.Equal(t, "2", attrs["attempt"])
	require.Contains(t, attrs["err"], "card declined")
}

func grepCano(body string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "cano_") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
