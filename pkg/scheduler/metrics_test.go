package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/scheduler"
)

// TestSchedulerMetrics: a flow that always fails trips after its streak
// limit; /metrics shows its fires, the trip and the leadership.
func TestSchedulerMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.coord.setOutcome(func(*protocol.Trigger) (protocol.EventType, time.Duration) { return protocol.EventFailed, 0 })
	flow := scheduler.Flow{ID: "flaky", Workflow: "wf", Schedule: scheduler.Every(50 * time.Millisecond),
		Backoff: scheduler.BackoffPolicy{Initial: 20 * time.Millisecond, Multiplier: 2, MaxDelay: time.Second,
			Jitter: -1, StreakLimit: 3}}
	require.NoError(t, b.client.Add(ctx, flow))
	reg := prometheus.NewRegistry()
	s, _ := b.newScheduler(t, scheduler.Config{Metrics: reg})
	waitLeader(t, 10*time.Second, s)
	waitStatus(t, b.client, "flaky", 10*time.Second, "tripped", func(i scheduler.FlowInfo) bool {
		return i.Status == scheduler.StatusTripped
	})

	// The leader counts the trip just after it writes the status read above.
	wants := []string{
		`cano_scheduler_fires_total{flow="flaky"} 3`,
		`cano_scheduler_trips_total{flow="flaky"} 1`,
		`cano_scheduler_leader 1`,
		`cano_scheduler_flows_paused 0`,
	}
	natstest.WaitFor(t, 10*time.Second, "the fires, the trip and the leadership on /metrics", func() bool {
		body := scrape(t, reg)
		for _, want := range wants {
			if !strings.Contains(body, want) {
				return false
			}
		}
		return true
	})
}

// scrape returns what /metrics serves from reg.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	web := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer web.Close()
	resp, err := http.Get(web.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// TestSchedulerMetricsPausedFlows: cano_scheduler_flows_paused counts the
// flows paused, those paused before the leader started included, and
// follows pauses, resumes and removals; it is 0 once the scheduler stops.
func TestSchedulerMetricsPausedFlows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: id, Workflow: "wf", Schedule: scheduler.Manual()}))
	}
	require.NoError(t, b.client.Pause(ctx, "a"))
	reg := prometheus.NewRegistry()
	s, _ := b.newScheduler(t, scheduler.Config{Metrics: reg})
	waitLeader(t, 10*time.Second, s)
	waitPaused := func(n int) {
		t.Helper()
		want := fmt.Sprintf("cano_scheduler_flows_paused %d\n", n)
		natstest.WaitFor(t, 10*time.Second, want, func() bool { return strings.Contains(scrape(t, reg), want) })
	}
	waitPaused(1)
	require.NoError(t, b.client.Pause(ctx, "b"))
	waitPaused(2)
	require.NoError(t, b.client.Resume(ctx, "a"))
	waitPaused(1)
	require.NoError(t, b.client.Remove(ctx, "b"))
	waitPaused(0)
	require.NoError(t, b.client.Pause(ctx, "c"))
	waitPaused(1)
	require.NoError(t, s.Stop(ctx))
	waitPaused(0)
}
