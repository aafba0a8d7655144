package protocol_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

func eventFixture(t *testing.T) *protocol.Event {
	t.Helper()
	for _, c := range wireCases() {
		if c.name == "event" {
			ev := *c.msg.(*protocol.Event)
			return &ev
		}
	}
	t.Fatal("no event fixture")
	return nil
}

// TestEventJSONGolden pins the JSON form of events (testdata/golden/event.json;
// regenerate with -update) and checks it is one line of valid JSON with
// snake_case fields, an RFC 3339 time and the error's category and message.
func TestEventJSONGolden(t *testing.T) {
	t.Parallel()
	ev := eventFixture(t)
	data := wirecodec.AppendEventJSON(nil, ev)
	path := filepath.Join("testdata", "golden", "event.json")
	if *update {
		require.NoError(t, os.WriteFile(path, append(bytes.Clone(data), '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run with -update")
	require.Equal(t, string(bytes.TrimSpace(want)), string(data))
	require.NotContains(t, string(data), "\n")

	var generic map[string]any
	require.NoError(t, json.Unmarshal(data, &generic))
	require.Equal(t, "failed", generic["type"])
	require.Equal(t, "run-01HZX", generic["run_id"])
	require.Equal(t, "2026-01-01T00:00:01.5Z", generic["time"])
	errObj := generic["error"].(map[string]any)
	require.Equal(t, "retry_exhausted", errObj["category"])
	require.Equal(t, "fetch failed after 3 attempts", errObj["message"])
	require.Equal(t, false, generic["output"])

	var got protocol.Event
	require.NoError(t, wirecodec.Decode(want, &got, 0))
	require.Equal(t, ev, &got)
}

// TestDecodeEventAcceptsMsgpack: events published by builds before JSON
// events still decode during a rolling upgrade.
func TestDecodeEventAcceptsMsgpack(t *testing.T) {
	t.Parallel()
	old, err := os.ReadFile(filepath.Join("testdata", "golden", "event.msgpack"))
	require.NoError(t, err)
	var got protocol.Event
	require.NoError(t, wirecodec.Decode(old, &got, 0))
	require.Equal(t, eventFixture(t), &got)
}

func TestEventJSONRoundTrip(t *testing.T) {
	t.Parallel()
	obj, err := wirecodec.EncodeValue(map[string]any{"total": 42, "name": "a\"b\\c\n", "ratio": 0.5, "tags": []string{"x"}})
	require.NoError(t, err)
	bin, err := wirecodec.EncodeValue([]byte{1, 2, 3})
	require.NoError(t, err)
	whole, err := wirecodec.EncodeValue(2.0)
	require.NoError(t, err)
	null, err := wirecodec.EncodeValue([]string(nil)) // a task's NextWith(exit, nilSlice)
	require.NoError(t, err)
	cases := []struct {
		name       string
		ev         protocol.Event
		wantSubstr string
	}{
		{"minimal", protocol.Event{V: 1, Type: protocol.EventState, RunID: "r"}, `{"v":1,"type":"state","run_id":"r","workflow":""}`},
		{"escapes", protocol.Event{V: 1, Type: protocol.EventRejected, RunID: "r", Workflow: "w",
			Detail: "quote \" back \\ nl \n tab \t ctl \x01 bad \xff é ✓"}, `"detail":"quote \" back \\ nl \n tab \t ctl \u0001 bad \ufffd é ✓"`},
		{"object output", protocol.Event{V: 1, Type: protocol.EventCompleted, RunID: "r", Workflow: "w", Output: obj},
			`"output":{"name":"a\"b\\c\n","ratio":0.5,"tags":["x"],"total":42}`},
		{"binary output", protocol.Event{V: 1, Type: protocol.EventCompleted, RunID: "r", Workflow: "w", Output: bin},
			`"output_msgpack":"xAMBAgM="`},
		{"nil output", protocol.Event{V: 1, Type: protocol.EventCompleted, RunID: "r", Workflow: "w", Output: null},
			`"output":null`},
		{"float output stays exact", protocol.Event{V: 1, Type: protocol.EventCompleted, RunID: "r", Workflow: "w", Output: whole},
			`"output_msgpack":`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			data := wirecodec.AppendEventJSON(nil, &c.ev)
			require.True(t, json.Valid(data), string(data))
			require.Contains(t, string(data), c.wantSubstr)
			var got protocol.Event
			require.NoError(t, wirecodec.Decode(data, &got, 0))
			if c.name == "escapes" {
				c.ev.Detail = "quote \" back \\ nl \n tab \t ctl \x01 bad \ufffd é ✓"
			}
			require.Equal(t, c.ev, got)
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		data string
		want error
	}{
		{"not json", `{"v":1,`, protocol.ErrMalformed},
		{"version", `{"v":7,"type":"state","run_id":"r"}`, protocol.ErrSchemaVersion},
		{"no run", `{"v":1,"type":"state"}`, protocol.ErrMissingField},
		{"bad time", `{"v":1,"type":"state","run_id":"r","time":"yesterday"}`, protocol.ErrInvalidField},
		{"bad output", `{"v":1,"type":"completed","run_id":"r","output_msgpack":"wcHB"}`, protocol.ErrInvalidField},
		{"empty", ``, protocol.ErrMalformed},
	}
	for _, c := range cases {
		var ev protocol.Event
		require.ErrorIs(t, wirecodec.Decode([]byte(c.data), &ev, 0), c.want, c.name)
	}
}

func TestTriggerReplyJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		reply protocol.TriggerReply
		want  string
	}{
		{"started", protocol.TriggerReply{V: 1, RunID: "r1"}, `{"v":1,"run_id":"r1"}`},
		{"existing", protocol.TriggerReply{V: 1, RunID: "r1", Existing: true}, `{"v":1,"run_id":"r1","existing":true}`},
		{"refused", protocol.TriggerReply{V: 1, Error: &protocol.ErrorInfo{Category: protocol.CategoryConfiguration, Message: "unknown workflow \"x\""}},
			`{"v":1,"error":{"category":"configuration","message":"unknown workflow \"x\""}}`},
		{"overloaded", protocol.TriggerReply{V: 1, Error: &protocol.ErrorInfo{Category: protocol.CategoryStore, Message: "overloaded"}, Retry: true},
			`{"v":1,"error":{"category":"store","message":"overloaded"},"retry":true}`},
	}
	for _, c := range cases {
		data := wirecodec.AppendTriggerReplyJSON(nil, &c.reply)
		require.Equal(t, c.want, string(data), c.name)
		var got protocol.TriggerReply
		require.NoError(t, wirecodec.Decode(data, &got, 0), c.name)
		require.Equal(t, c.reply, got, c.name)
	}
}

func TestDecodeCancelJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body, run string
		want            *protocol.CancelRequest
		err             error
		hint            string
	}{
		{"reason", `{"reason": "changed my mind"}`, "r1", &protocol.CancelRequest{V: 1, RunID: "r1", Reason: "changed my mind"}, nil, ""},
		{"empty body", ``, "r1", &protocol.CancelRequest{V: 1, RunID: "r1"}, nil, ""},
		{"matching run id", `{"run_id": "r1"}`, "r1", &protocol.CancelRequest{V: 1, RunID: "r1"}, nil, ""},
		{"other run id", `{"run_id": "r2"}`, "r1", nil, protocol.ErrInvalidField, `"r2" in the body`},
		{"unknown field", `{"why": "x"}`, "r1", nil, protocol.ErrMalformed, `publish {"reason": "<why>"}`},
		{"no run", `{}`, "", nil, protocol.ErrInvalidName, ""},
		{"version", `{"v": 9}`, "r1", nil, protocol.ErrSchemaVersion, ""},
	}
	for _, c := range cases {
		got, err := wirecodec.DecodeCancelJSON([]byte(c.body), c.run, 0)
		if c.err != nil {
			require.ErrorIs(t, err, c.err, c.name)
			require.ErrorContains(t, err, c.hint, c.name)
			continue
		}
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, got, c.name)
	}
	require.Equal(t, "r1", wirecodec.RunFromCancelSubject(protocol.MustNames(""), "cano.control.cancel.r1"))
	require.Equal(t, "", wirecodec.RunFromCancelSubject(protocol.MustNames(""), "cano.trigger.r1"))
}

func TestTriggerJSONNamesTheEnvelope(t *testing.T) {
	t.Parallel()
	_, err := wirecodec.DecodeTriggerJSON([]byte(`{"customer": "ada"}`), "order", 0, time.Time{})
	require.ErrorIs(t, err, protocol.ErrMalformed)
	require.ErrorContains(t, err, `not a trigger envelope`)
	require.ErrorContains(t, err, `unknown field "customer"`)
	require.ErrorContains(t, err, `{"input": <your input>}`)
	require.ErrorContains(t, err, `Content-Type: application/json`)
}
