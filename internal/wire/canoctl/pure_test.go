package canoctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
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

func TestPayload(t *testing.T) {
	v, form := payload([]byte(`{"input":1}`))
	require.Equal(t, "json", form)
	require.JSONEq(t, `{"input":1}`, string(v.(json.RawMessage)))
	_, form = payload([]byte{0x81, 0xa1, 'a', 0x01}) // msgpack {"a":1}
	require.Equal(t, "msgpack", form)
	_, form = payload(nil)
	require.Equal(t, "", form)
}

func TestJSONLeavesHTMLCharacters(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeJSON(&buf, map[string]string{"v": "<nil> & >"}))
	require.Equal(t, "{\n  \"v\": \"<nil> & >\"\n}\n", buf.String())
	buf.Reset()
	require.NoError(t, writeJSONLine(&buf, []any{"<nil>", json.RawMessage(`"<b>"`)}))
	require.Equal(t, `["<nil>","<b>"]`+"\n", buf.String())
	require.Equal(t, `{"v":"<nil>"}`, jsonText(map[string]any{"v": "<nil>"}))
	v, form := payload([]byte{0x81, 0xa1, 'v', 0xa5, '<', 'n', 'i', 'l', '>'}) // msgpack {"v":"<nil>"}
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
