package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestRunSampler(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at       time.Duration
		ok       bool
		heldBack int
	}
	cases := []struct {
		name  string
		rate  int
		steps []step
	}{
		{"under the rate every run", 3, []step{{0, true, 0}, {100 * time.Millisecond, true, 0}, {200 * time.Millisecond, true, 0}}},
		{"over the rate held back, then counted", 2, []step{
			{0, true, 0}, {10 * time.Millisecond, true, 0}, {20 * time.Millisecond, false, 0}, {30 * time.Millisecond, false, 0},
			{time.Second, true, 2}, {time.Second + time.Millisecond, true, 0}}},
		{"a clock going back starts a window", 1, []step{{time.Second, true, 0}, {0, true, 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := runSampler{perSecond: c.rate}
			for i, st := range c.steps {
				ok, held := s.allow(t0.Add(st.at))
				require.Equal(t, st.ok, ok, "step %d", i)
				require.Equal(t, st.heldBack, held, "step %d", i)
			}
		})
	}
}

// TestRunLoggerLogsFinishedRuns feeds terminal events (JSON, as published)
// to the dev mode's run log and reads the records from a captured handler.
func TestRunLoggerLogsFinishedRuns(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRunLogger(log, func() time.Time { return now })
	msg := func(ev protocol.Event) *nats.Msg {
		ev.V = protocol.SchemaVersion
		return &nats.Msg{Data: wirecodec.AppendEventJSON(nil, &ev)}
	}
	l.handle(msg(protocol.Event{Type: protocol.EventState, RunID: "r0", Workflow: "order", State: "charge"}))
	l.handle(msg(protocol.Event{Type: protocol.EventCompleted, RunID: "r1", Workflow: "order", State: "done", Status: protocol.RunCompleted}))
	l.handle(msg(protocol.Event{Type: protocol.EventFailed, RunID: "r2", Workflow: "order", State: "charge", Status: protocol.RunFailed,
		Error: &protocol.ErrorInfo{Category: protocol.CategoryRetryExhausted, Message: "card declined", Attempts: 3, State: "charge"}}))
	for i := range DevRunLogRate + 5 { // a burst over the rate
		l.handle(msg(protocol.Event{Type: protocol.EventCompleted, RunID: "b" + string(rune('a'+i)), Workflow: "bulk", Status: protocol.RunCompleted}))
	}
	now = now.Add(time.Second)
	l.handle(msg(protocol.Event{Type: protocol.EventCancelled, RunID: "r3", Workflow: "order", Status: protocol.RunCancelled}))

	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		lines = append(lines, m)
	}
	require.Len(t, lines, DevRunLogRate+1, "the state event is ignored; the burst is cut at the rate")
	require.Equal(t, "INFO", lines[0]["level"])
	require.Equal(t, "run finished", lines[0]["msg"])
	require.Equal(t, "r1", lines[0]["run_id"])
	require.Equal(t, "completed", lines[0]["status"])
	require.Equal(t, "INFO", lines[1]["level"], "the coordinator warns of a failed run; this is its end")
	require.Equal(t, "r2", lines[1]["run_id"])
	require.Equal(t, "order", lines[1]["workflow"])
	require.Equal(t, "charge", lines[1]["state"])
	require.Equal(t, float64(3), lines[1]["attempt"])
	require.Equal(t, "card declined", lines[1]["err"])
	last := lines[len(lines)-1]
	require.Equal(t, "r3", last["run_id"])
	require.Equal(t, float64(7), last["held_back"], "2 logged of the 2+%d in the first second, 7 held back", DevRunLogRate+5)
}
