package scheduler_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/scheduler"
)

// jsonLines parses the JSON log lines written to logs.
func jsonLines(t *testing.T, logs *natstest.LogBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// TestSkippedSlotsLogOncePerStreak: a cron flow whose run outlasts several slots
// logs the first skipped slot of the streak at info, the others at debug,
// and says how many it skipped when it fires again.
func TestSkippedSlotsLogOncePerStreak(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.coord.setOutcome(func(*protocol.Trigger) (protocol.EventType, time.Duration) {
		return protocol.EventCompleted, 3500 * time.Millisecond // 3 or 4 slots of a second
	})
	// A cron flow has slots to skip (an Every flow's next is due after its
	// run ends).
	require.NoError(t, b.client.Add(ctx, scheduler.Flow{ID: "slow", Workflow: "wf", Schedule: scheduler.Cron("* * * * * *")}))
	logs := &natstest.LogBuffer{}
	b.newScheduler(t, scheduler.Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	b.coord.waitRuns(t, "slow", 2, 15*time.Second)

	var infoSkips, debugSkips, firesAgain int
	for _, l := range jsonLines(t, logs) {
		msg, _ := l["msg"].(string)
		switch {
		case strings.HasPrefix(msg, "fire skipped") && l["level"] == "INFO":
			infoSkips++
		case strings.HasPrefix(msg, "fire skipped") && l["level"] == "DEBUG":
			debugSkips++
		case msg == "flow fires again":
			firesAgain++
			require.GreaterOrEqual(t, l["slots_skipped"], float64(2), "%v", l)
		}
	}
	require.Equal(t, 1, firesAgain, "the second run's fire follows the first run's streak")
	require.GreaterOrEqual(t, infoSkips, 1)
	require.LessOrEqual(t, infoSkips, 2, "one info line per streak (the second run's may have begun)")
	require.GreaterOrEqual(t, debugSkips, 1, "the rest of the streak at debug")
}
