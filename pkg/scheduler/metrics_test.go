package scheduler_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

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

	web := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(web.Close)
	resp, err := http.Get(web.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, want := range []string{
		`cano_scheduler_fires_total{flow="flaky"} 3`,
		`cano_scheduler_trips_total{flow="flaky"} 1`,
		`cano_scheduler_leader 1`,
	} {
		require.True(t, strings.Contains(string(body), want), "missing %s in:\n%s", want, body)
	}
}
