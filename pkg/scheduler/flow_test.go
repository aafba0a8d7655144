package scheduler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCompile(t *testing.T) {
	t.Parallel()
	ok := func(s Schedule) Flow { return Flow{ID: "f", Workflow: "wf", Schedule: s} }
	tests := []struct {
		name string
		f    Flow
		want string // "" means valid
	}{
		{"six fields", ok(Cron("0 */5 * * * *")), ""},
		{"five fields", ok(Cron("*/5 * * * *")), ""},
		{"descriptor", ok(Cron("@hourly")), ""},
		{"every descriptor", ok(Cron("@every 5s")), ""},
		{"time zone", ok(CronIn("0 0 2 * * *", "UTC")), ""},
		{"every", ok(Every(time.Second)), ""},
		{"manual", ok(Manual()), ""},
		{"bad cron", ok(Cron("61 * * * * *")), "invalid cron expression"},
		{"garbage cron", ok(Cron("every day")), "invalid cron expression"},
		{"empty cron", ok(Cron("")), "invalid cron expression"},
		{"never fires", ok(Cron("0 0 0 30 2 *")), "never fires"},
		{"bad zone", ok(CronIn("* * * * *", "Mars/Olympus")), "invalid time zone"},
		{"zero every", ok(Every(0)), "must be positive"},
		{"unknown kind", ok(Schedule{Kind: "weekly"}), "unknown Schedule.Kind"},
		{"mixed", ok(Schedule{Kind: KindManual, Cron: "* * * * *"}), "manual"},
		{"bad id", Flow{ID: "a.b", Workflow: "wf", Schedule: Manual()}, "ID"},
		{"long id", Flow{ID: string(make([]byte, MaxFlowIDLen+1)), Workflow: "wf", Schedule: Manual()}, "ID"},
		{"no workflow", Flow{ID: "f", Schedule: Manual()}, "Workflow"},
		{"bad misfire", Flow{ID: "f", Workflow: "wf", Schedule: Manual(), Misfire: "later"}, "Misfire"},
		{"bad backoff", Flow{ID: "f", Workflow: "wf", Schedule: Manual(), Backoff: BackoffPolicy{Multiplier: 0.1}}, "Multiplier"},
		{"msgpack input", Flow{ID: "f", Workflow: "wf", Schedule: Manual(), Input: mustEncode(t, map[string]int{"days": 7})}, ""},
		{"JSON input", Flow{ID: "f", Workflow: "wf", Schedule: Manual(), Input: []byte(`{"days": 7}`)},
			"Input holds JSON, but a flow's input is msgpack: pass scheduler.EncodeInput(v)"},
		{"truncated input", Flow{ID: "f", Workflow: "wf", Schedule: Manual(), Input: mustEncode(t, "a string")[:3]},
			"Input is not one msgpack value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := compile(&tc.f)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidFlow)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestPlanNext(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 10, 17, 42, 500_000_000, time.UTC)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tzdata")
	}
	tests := []struct {
		name  string
		s     Schedule
		after time.Time
		want  time.Time
	}{
		{"every second", Cron("* * * * * *"), at, time.Date(2026, 3, 1, 10, 17, 43, 0, time.UTC)},
		{"six fields", Cron("0 */5 * * * *"), at, time.Date(2026, 3, 1, 10, 20, 0, 0, time.UTC)},
		{"five fields", Cron("*/5 * * * *"), at, time.Date(2026, 3, 1, 10, 20, 0, 0, time.UTC)},
		{"hourly", Cron("@hourly"), at, time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)},
		{"exact slot is excluded", Cron("0 0 * * * *"), time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		{"every aligned", Cron("@every 5s"), at, time.Date(2026, 3, 1, 10, 17, 45, 0, time.UTC)},
		{"every aligned on slot", Cron("@every 5s"), time.Date(2026, 3, 1, 10, 17, 45, 0, time.UTC), time.Date(2026, 3, 1, 10, 17, 50, 0, time.UTC)},
		{"time zone", CronIn("0 0 2 * * *", "Europe/Paris"), at, time.Date(2026, 3, 2, 2, 0, 0, 0, paris).UTC()},
		{"utc by default", Cron("0 0 2 * * *"), at, time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)},
		{"manual has none", Manual(), at, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := Flow{ID: "f", Workflow: "wf", Schedule: tc.s}
			p, err := compile(&f)
			require.NoError(t, err)
			require.Equal(t, tc.want, p.next(tc.after))
		})
	}
}

func TestLatestMissed(t *testing.T) {
	t.Parallel()
	f := Flow{ID: "f", Workflow: "wf", Schedule: Cron("0 0 * * * *")}
	p, err := compile(&f)
	require.NoError(t, err)
	h := func(n int) time.Time { return time.Date(2026, 1, 1, n, 0, 0, 0, time.UTC) }
	require.Equal(t, h(5), p.latestMissed(h(2), h(5).Add(time.Minute), 100))
	require.Equal(t, h(5), p.latestMissed(h(2), h(5), 100), "a slot at now counts")
	require.True(t, p.latestMissed(h(5), h(5).Add(time.Minute), 100).IsZero(), "nothing missed")
	require.True(t, p.latestMissed(h(0), h(23), 3).IsZero(), "gives up past the limit")
}

func TestParseFlowFile(t *testing.T) {
	t.Parallel()
	flows, err := parseFlowFile([]byte(`{"flows": [
		{"id": "a", "workflow": "wf", "cron": "@hourly", "input": {"n": 1, "x": [1.5, "s"]}},
		{"id": "b", "workflow": "wf", "every": "30s", "backoff": {"initial": "2s", "max_delay": "1m", "streak_limit": 2}},
		{"id": "c", "workflow": "wf", "manual": true}
	]}`))
	require.NoError(t, err)
	require.Len(t, flows, 3)
	require.Equal(t, Cron("@hourly"), flows[0].Schedule)
	require.NotEmpty(t, flows[0].Input)
	require.Equal(t, Every(30*time.Second), flows[1].Schedule)
	require.Equal(t, BackoffPolicy{Initial: 2 * time.Second, MaxDelay: time.Minute, StreakLimit: 2}, flows[1].Backoff)
	require.Equal(t, Manual(), flows[2].Schedule)

	bad := []struct{ name, file, want string }{
		{"two schedules", `{"flows": [{"id": "a", "workflow": "wf", "cron": "@hourly", "every": "1s"}]}`, "exactly one"},
		{"no schedule", `{"flows": [{"id": "a", "workflow": "wf"}]}`, "exactly one"},
		{"bad cron", `{"flows": [{"id": "a", "workflow": "wf", "cron": "x"}]}`, "invalid cron"},
		{"bad every", `{"flows": [{"id": "a", "workflow": "wf", "every": "soon"}]}`, "every"},
		{"duplicate", `{"flows": [{"id": "a", "workflow": "wf", "manual": true}, {"id": "a", "workflow": "wf", "manual": true}]}`, "duplicate"},
		{"unknown field", `{"flows": [{"id": "a", "workflow": "wf", "manual": true, "when": 1}]}`, "unknown field"},
		{"not json", `flows:`, "flow file"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseFlowFile([]byte(tc.file))
			require.ErrorIs(t, err, ErrInvalidFlow)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := EncodeInput(v)
	require.NoError(t, err)
	return b
}
