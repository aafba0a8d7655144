package fault

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/proctest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/scheduler"
)

// flowSlots returns the slots (unix seconds) of the runs a flow started,
// and how many runs each slot had.
func flowSlots(t *testing.T, cl *client.Client, flow string) map[int64]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := cl.List(ctx, &client.ListOpts{Workflow: demo.OneTaskName})
	require.NoError(t, err)
	slots := map[int64]int{}
	for _, r := range recs {
		if r.Flow == flow && r.Status == client.RunCompleted {
			slots[r.FlowSlot.Unix()]++
		}
	}
	return slots
}

func TestCronAcrossCoordinatorProcessesWithLeaderKill(t *testing.T) {
	b := setup(t)
	ttl := 3 * time.Second
	args := func() []string {
		return []string{"-s", b.srv.URL, "-log-format", "json", "-ack-wait", "2s", "-leader-ttl", ttl.String(), "-drain-timeout", "1s"}
	}
	c1 := proctest.Start(t, "coordinator-1", b.coord, args()...)
	c2 := proctest.Start(t, "coordinator-2", b.coord, args()...)
	b.startWorker(t, "worker-1")
	b.waitRegistered(t)

	_, js := b.srv.Connect(t)
	sc, err := scheduler.NewClient(js, scheduler.ClientConfig{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, sc.Add(ctx, scheduler.Flow{ID: "tick", Workflow: demo.OneTaskName, Schedule: scheduler.Cron("* * * * * *")}))

	lease, err := js.KeyValue(ctx, layout.LeaderBucket(protocol.MustNames("")))
	require.NoError(t, err)
	// leader is the process whose candidate id holds the lease now.
	leader := func() *proctest.Proc {
		e, err := lease.Get(ctx, layout.LeaderKey)
		if err != nil {
			return nil
		}
		for _, p := range []*proctest.Proc{c1, c2} {
			if !p.Exited() && strings.Contains(p.Output(), `"candidate":"`+string(e.Value())+`"`) {
				return p
			}
		}
		return nil
	}
	natstest.WaitFor(t, 30*time.Second, "a leader", func() bool { return leader() != nil })
	natstest.WaitFor(t, 60*time.Second, "8 slots", func() bool { return len(flowSlots(t, b.client, "tick")) >= 8 })
	dead := leader()
	other := c1
	if dead == c1 {
		other = c2
	}
	dead.Kill()
	killedAt := time.Now()
	t.Logf("killed the scheduler leader %s (SIGKILL)", dead.Name)
	natstest.WaitFor(t, 30*time.Second, "the other coordinator to lead", func() bool { return leader() == other })
	takeover := time.Since(killedAt)
	natstest.WaitFor(t, 90*time.Second, "22 slots", func() bool { return len(flowSlots(t, b.client, "tick")) >= 22 })
	require.NoError(t, sc.Remove(ctx, "tick"))

	slots := flowSlots(t, b.client, "tick")
	var keys []int64
	for s, n := range slots {
		require.Equal(t, 1, n, "slot %d ran %d times", s, n)
		keys = append(keys, s)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	missed := 0
	var widest int64
	for i := 1; i < len(keys); i++ {
		gap := keys[i] - keys[i-1]
		missed += int(gap - 1)
		widest = max(widest, gap)
	}
	// Only slots inside the failover window may be missed (skip policy).
	// The design bound is TTL + one renewal interval (measured 2.3–3.2 s
	// with TTL 3 s on an idle machine); CI runs this beside other packages
	// on two cores, where a takeover of 8 s has been seen, so the assertion
	// allows that much slack and the log shows the figure measured.
	bound := int64((ttl + ttl/3).Seconds()) + 8
	require.LessOrEqual(t, widest, bound, "gap of %d s between slots", widest)
	t.Logf("cron every second across 2 coordinator processes: %d slots ran, each once; leader killed, takeover after %s; %d slots missed (widest gap %d s, bound %d s)",
		len(keys), takeover.Round(100*time.Millisecond), missed, widest, bound)
}
