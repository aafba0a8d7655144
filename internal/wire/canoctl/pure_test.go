package canoctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/internal/wire/pretty"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
)

func TestSplitWords(t *testing.T) {
	groups := map[string]bool{"runs": true}
	tests := []struct {
		name        string
		args        []string
		words, rest []string
	}{
		{"group and sub", []string{"runs", "show", "X"}, []string{"runs", "show"}, []string{"X"}},
		{"common value flag first", []string{"-s", "nats://h:1", "runs", "list"}, []string{"runs", "list"}, []string{"-s", "nats://h:1"}},
		{"flag=value", []string{"--server=nats://h:1", "runs", "list", "--json"}, []string{"runs", "list"}, []string{"--server=nats://h:1", "--json"}},
		{"leaf", []string{"trigger", "wf", "--wait"}, []string{"trigger"}, []string{"wf", "--wait"}},
		{"flags after words keep their values", []string{"runs", "show", "--timeout", "5s", "X"}, []string{"runs", "show"}, []string{"--timeout", "5s", "X"}},
		{"none", []string{"--version"}, nil, []string{"--version"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, r := splitWords(tc.args, groups)
			require.Equal(t, tc.words, w)
			require.Equal(t, tc.rest, r)
		})
	}
}

func TestParseInput(t *testing.T) {
	tests := []struct {
		in   string
		want any
		bad  bool
	}{
		{"", nil, false},
		{`{"n": 3, "f": 1.5, "l": [1, "a"]}`, map[string]any{"n": int64(3), "f": 1.5, "l": []any{int64(1), "a"}}, false},
		{`"x"`, "x", false},
		{`2.0`, int64(2), false},
		{`{`, nil, true},
		{`1 2`, nil, true},
		{`@/nonexistent/file.json`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseInput(tc.in)
			if tc.bad {
				var ue usageError
				require.True(t, errors.As(err, &ue), "%v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestFilterSince(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	runs := []*client.Run{{ID: "new", CreatedAt: now.Add(-time.Minute)}, {ID: "old", CreatedAt: now.Add(-2 * time.Hour)}}
	ids := func(rs []*client.Run) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	require.Equal(t, []string{"new", "old"}, ids(filterSince(runs, now, 0)))
	require.Equal(t, []string{"new"}, ids(filterSince(runs, now, time.Hour)))
	require.Empty(t, filterSince(runs, now, time.Second))
}

func TestMermaidSeenEdgesAndIDs(t *testing.T) {
	wf := &client.WorkflowInfo{Name: "w", Version: "v1", Initial: "a", States: []client.StateInfo{
		{Name: "a", Kind: client.StateTask, Task: "t"},
		{Name: "end", Kind: client.StateTask, Task: "t"},
		{Name: "my-state", Kind: client.StateExit},
	}}
	d := mermaidDiagram(wf, seenEdges([][]string{{"a", "end", "my-state"}, {"a", "end", "a", "end", "my-state"}}), 2)
	require.Contains(t, d, "state \"end\" as s_end\n")
	require.Contains(t, d, "state \"my-state\" as s_my_state\n")
	require.Contains(t, d, "a --> s_end : seen\n")
	require.Contains(t, d, "s_end --> a : seen\n")
	require.Contains(t, d, "s_end --> s_my_state : seen\n")
	require.Contains(t, d, "s_my_state --> [*]\n")
	require.Contains(t, d, "last 2 runs")
}

func TestJSONLeavesHTMLCharacters(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeJSON(&buf, map[string]string{"v": "<nil> & >"}))
	require.Equal(t, "{\n  \"v\": \"<nil> & >\"\n}\n", buf.String())
	buf.Reset()
	require.NoError(t, writeJSONLine(&buf, []any{"<nil>", json.RawMessage(`"<b>"`)}))
	require.Equal(t, `["<nil>","<b>"]`+"\n", buf.String())
	require.Equal(t, `{"v":"<nil>"}`, jsonText(map[string]any{"v": "<nil>"}))
	v, form := pretty.Payload([]byte{0x81, 0xa1, 'v', 0xa5, '<', 'n', 'i', 'l', '>'}) // msgpack {"v":"<nil>"}
	require.Equal(t, "msgpack", form)
	require.Equal(t, `{"v":"<nil>"}`, string(v.(json.RawMessage)))
}

func TestShownHeaders(t *testing.T) {
	keys, hidden := shownHeaders(map[string]string{
		"Cano-New-Run-Id": "1", "cano-reply-to": "_INBOX.x", "Cano-Coordinator": "c1", "Cano-Resent": "1",
		"Content-Type": "application/json", "Nats-Msg-Id": "trig:r1", "Cano-Reason": "why", "traceparent": "00-…",
	})
	require.Equal(t, []string{"Cano-Reason", "Content-Type", "Nats-Msg-Id", "traceparent"}, keys)
	require.Equal(t, 4, hidden)
	keys, hidden = shownHeaders(nil)
	require.Empty(t, keys)
	require.Zero(t, hidden)
}

// TestMermaidOnFailure: a state's routed failures are an edge of their own.
func TestMermaidOnFailure(t *testing.T) {
	wf := &client.WorkflowInfo{Name: "order", Initial: "charge", States: []client.StateInfo{
		{Name: "charge", Kind: client.StateTask, Task: "charge_card", OnFailure: "release"},
		{Name: "release", Kind: client.StateTask, Task: "release_stock"},
		{Name: "shipped", Kind: client.StateExit},
	}}
	d := mermaidDiagram(wf, nil, 0)
	require.Contains(t, d, "\n    charge --> release : on failure\n")
	v := viewWorkflow(wf)
	require.Equal(t, "release", v.States[0].OnFailure)
}

func TestStartAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at, in string
		want   time.Time
		errHas string
	}{
		{},
		{in: "90s", want: now.Add(90 * time.Second)},
		{in: "48h", want: now.Add(48 * time.Hour)},
		{in: "0s", want: now},
		{at: "2026-12-24T18:00:00Z", want: time.Date(2026, 12, 24, 18, 0, 0, 0, time.UTC)},
		{at: "2026-12-24T18:00:00Z", in: "1h", errHas: "--at and --in both say when to start"},
		{in: "1d", errHas: `--in "1d" is not a duration`},
		{in: "-5m", errHas: "--in -5m is negative"},
		{at: "tomorrow", errHas: "is not an RFC 3339 time"},
		{at: "2999-01-01T00:00:00Z", errHas: "between 1970 and 2262"},
		{at: "1960-01-01T00:00:00Z", errHas: "between 1970 and 2262"},
		{in: "2500000h", errHas: "between 1970 and 2262"},
	} {
		got, err := startAt(tc.at, tc.in, now)
		if tc.errHas != "" {
			require.ErrorContains(t, err, tc.errHas, "%+v", tc)
			var u usageError
			require.ErrorAs(t, err, &u, "a bad command line (exit 2)")
			continue
		}
		require.NoError(t, err, "%+v", tc)
		require.True(t, tc.want.Equal(got), "%+v: got %s", tc, got)
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	top := []string{"breakers", "dlq", "flows", "help", "runs", "trigger", "ui", "workers", "workflows"}
	for _, tc := range []struct {
		word  string
		names []string
		want  string
	}{
		{"run", top, "runs"},
		{"workflow", top, "workflows"},
		{"worker", top, "workers"},
		{"trigers", top, "trigger"},
		{"Runs", top, "runs"},
		{"dlqs", top, "dlq"},
		{"frob", top, ""},
		{"wf", top, ""},
		{"lsit", []string{"list", "show", "watch", "cancel", "rerun", "start"}, "list"},
		{"canc", []string{"list", "show", "watch", "cancel", "rerun", "start"}, "cancel"},
		{"parallel_fech", []string{"echo", "failing", "parallel_fetch"}, "parallel_fetch"},
		{"nope", []string{"echo", "failing", "parallel_fetch"}, ""},
		{"echo", []string{"echo"}, ""}, // the word itself is no suggestion
		{"x", nil, ""},
	} {
		require.Equal(t, tc.want, closest(tc.word, tc.names), "%q", tc.word)
	}
	require.Equal(t, 0, editDistance("", ""))
	require.Equal(t, 3, editDistance("", "abc"))
	require.Equal(t, 2, editDistance("trigers", "trigger"))
	require.Equal(t, 1, editDistance("héllo", "hello"), "runes, not bytes")
}

func TestMoreRunsNote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		more int
		opts runsListOpts
		want string
	}{
		{23, runsListOpts{}, "… and 23 more runs: use --limit 0 for all, or narrow with --workflow, --status or --since"},
		{1, runsListOpts{workflow: "echo"}, "… and 1 more run: use --limit 0 for all, or narrow with --status or --since"},
		{5, runsListOpts{workflow: "echo", since: time.Hour}, "… and 5 more runs: use --limit 0 for all, or narrow with --status"},
		{5, runsListOpts{workflow: "echo", status: "failed", since: time.Hour}, "… and 5 more runs: use --limit 0 for all"},
	} {
		require.Equal(t, tc.want, moreRunsNote(tc.more, &tc.opts))
	}
}

func TestErrorPlace(t *testing.T) {
	t.Parallel()
	se := &fsm.StateError{State: "start", Attempt: 2, Path: []string{"validate", "start"}, Cause: errors.New("cancelled: by hand")}
	for _, tc := range []struct {
		name string
		ev   *errorView
		msg  string
		want string
	}{
		{"no error", nil, "", ""},
		{"no state", &errorView{Message: "boom"}, "boom", ""},
		{"the message says it already", viewError(se), se.Error(), ""},
		{"a message without it", viewError(se), "boom", "in state start (attempt 2, path validate → start)"},
		{"no attempt", &errorView{State: "start", Path: []string{"start"}}, "boom", "in state start (path start)"},
		{"state only", &errorView{State: "start"}, "boom", "in state start"},
	} {
		require.Equal(t, tc.want, errorPlace(tc.ev, tc.msg), tc.name)
	}
}

// TestPrintRun: an ended run's error is said once; a run that ended
// before its scheduled start says when it was to start, not that it
// started.
func TestPrintRun(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		run       client.Run
		want, not []string
	}{
		{
			name: "failed in a state",
			run: client.Run{ID: "r1", Workflow: "w", Status: client.RunFailed, State: "start", Path: []string{"start"},
				CreatedAt: now.Add(-time.Minute), UpdatedAt: now,
				Err: &fsm.StateError{State: "start", Path: []string{"start"}, Cause: errors.New("cancelled: by hand")}},
			want: []string{"\nError: in state \"start\" (path start): cancelled: by hand\n", "Started:"},
			not:  []string{"  in state start", "after"},
		},
		{
			name: "cancelled before its start",
			run: client.Run{ID: "r2", Workflow: "w", Status: client.RunCancelled, State: "start",
				CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-30 * time.Minute), StartAt: now.Add(time.Hour)},
			want: []string{"Was to start:", "13:00:00.000 (ended before its start)", "Ended:", "Triggered:"},
			not:  []string{"Started:", "Duration:"},
		},
		{
			name: "scheduled, then started",
			run: client.Run{ID: "r3", Workflow: "w", Status: client.RunCompleted, State: "done",
				CreatedAt: now.Add(-time.Hour), StartAt: now.Add(-30 * time.Minute), UpdatedAt: now.Add(-29 * time.Minute)},
			want: []string{"Started:", "11:30:00.000", "Duration:"},
			not:  []string{"Was to start:"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			printRun(&buf, &tc.run, now)
			for _, w := range tc.want {
				require.Contains(t, buf.String(), w)
			}
			for _, n := range tc.not {
				require.NotContains(t, buf.String(), n)
			}
		})
	}
}

func TestStartedCell(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later := now.Add(time.Hour)
	for _, tc := range []struct {
		name string
		run  client.Run
		want string
	}{
		{"started at its trigger", client.Run{Status: client.RunRunning, CreatedAt: now}, "12:00:00.000"},
		{"scheduled: when it starts", client.Run{Status: client.RunScheduled, CreatedAt: now, StartAt: later}, "13:00:00.000"},
		{"cancelled before its start", client.Run{Status: client.RunCancelled, CreatedAt: now, StartAt: later, UpdatedAt: now}, "-"},
		{"ended after its start", client.Run{Status: client.RunCompleted, CreatedAt: now, StartAt: now, UpdatedAt: later}, "12:00:00.000"},
	} {
		require.Equal(t, tc.want, startedCell(&tc.run, now), tc.name)
	}
}

// TestBulkPreview: without --yes a bulk action shows a table of what it
// would act on; --json keeps its shape.
func TestBulkPreview(t *testing.T) {
	t.Parallel()
	b := bulk{what: "dead letters", noun: "dead letter", verb: "delete", past: "deleted", asJSON: seqNumbers,
		header: []string{"SEQ", "SOURCE", "REASON"}}
	b.add("7", uint64(7), "trigger", "unknown workflow")
	b.add("9", uint64(9), "task", "")
	var out bytes.Buffer
	require.NoError(t, b.preview(&env{c: &common{}, out: &out}, nil))
	require.Equal(t, "SEQ  SOURCE   REASON\n"+
		"7    trigger  unknown workflow\n"+
		"9    task     -\n"+
		"2 dead letters would be deleted: run again with --yes to delete them\n", out.String())
	out.Reset()
	require.NoError(t, b.preview(&env{c: &common{json: true}, out: &out}, nil))
	require.JSONEq(t, `{"would_delete": [7, 9]}`, out.String())
	out.Reset()
	require.NoError(t, bulk{what: "runs of echo", noun: "run", verb: "cancel", past: "cancelled"}.preview(&env{c: &common{}, out: &out}, nil))
	require.Equal(t, "no runs of echo to cancel\n", out.String())
}

func TestConnectHint(t *testing.T) {
	t.Parallel()
	refused := &cli.ConnectError{URL: "nats://127.0.0.1:4222", Reason: "connection refused"}
	err := connectHint(refused)
	require.ErrorIs(t, err, refused)
	require.Equal(t, "cannot connect to nats://127.0.0.1:4222: connection refused (is a NATS server running there? "+
		"start one with: go run ./cmd/coordinator -dev, or pass -s URL or set NATS_URL)", err.Error())
	auth := &cli.ConnectError{URL: "nats://h:4222", Auth: true, Reason: "check --user/--password, --token, --creds or --nkey"}
	require.Equal(t, auth, connectHint(auth), "a rejection says what to check already")
	other := errors.New("unknown nats context")
	require.Equal(t, other, connectHint(other))
}

// TestSlotText: a cron flow's next slot in UTC, in its own zone, and how
// far off.
func TestSlotText(t *testing.T) {
	t.Parallel()
	next := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	now := time.Date(2026, 12, 1, 19, 48, 0, 0, time.UTC)
	if _, err := time.LoadLocation("Europe/Paris"); err != nil {
		t.Skip("no tzdata")
	}
	require.Equal(t, "2026-12-02 01:00:00 UTC (02:00:00 Europe/Paris), in 5h12m0s", slotText(next, "Europe/Paris", now))
	require.Equal(t, "01:00:00.000 UTC, in 30m0s", slotText(next, "", next.Add(-30*time.Minute)))
	require.Equal(t, "-", slotText(time.Time{}, "", now))
}
