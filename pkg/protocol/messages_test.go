package protocol_test

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// mutate returns a copy of the named fixture changed by f.
func mutate[T any](t *testing.T, name string, f func(*T)) protocol.Message {
	t.Helper()
	var msg any = caseNamed(t, name).msg
	m, ok := msg.(*T)
	require.True(t, ok)
	f(m)
	return any(m).(protocol.Message)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", protocol.MaxNameLen+1)
	tests := []struct {
		name string
		msg  func(t *testing.T) protocol.Message
		want error // nil means valid
	}{
		{"trigger ok", func(t *testing.T) protocol.Message {
			return &protocol.Trigger{V: 1, Workflow: "wf"}
		}, nil},
		{"trigger missing workflow", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.Workflow = "" })
		}, protocol.ErrMissingField},
		{"trigger workflow with dot", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.Workflow = "a.b" })
		}, protocol.ErrInvalidName},
		{"trigger workflow with wildcard", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.Workflow = "*" })
		}, protocol.ErrInvalidName},
		{"trigger workflow too long", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.Workflow = long })
		}, protocol.ErrInvalidName},
		{"trigger run id with space", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.RunID = "run 1" })
		}, protocol.ErrInvalidName},
		{"trigger initial state too long", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.InitialState = long })
		}, protocol.ErrInvalidField},
		{"trigger idempotency key too long", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.IdempotencyKey = strings.Repeat("k", 1025) })
		}, protocol.ErrInvalidField},
		{"trigger run id with idempotency key", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.RunID, m.IdempotencyKey = "r1", "k1" })
		}, protocol.ErrInvalidField},
		{"trigger unknown input format", func(t *testing.T) protocol.Message {
			return mutate(t, "trigger", func(m *protocol.Trigger) { m.InputFormat = "xml" })
		}, protocol.ErrInvalidField},
		{"trigger reply neither run id nor error", func(t *testing.T) protocol.Message {
			return &protocol.TriggerReply{V: 1}
		}, protocol.ErrMissingField},
		{"trigger reply error only", func(t *testing.T) protocol.Message {
			return &protocol.TriggerReply{V: 1, Error: &protocol.ErrorInfo{Message: "no such workflow"}}
		}, nil},
		{"task command missing run id", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.RunID = "" })
		}, protocol.ErrInvalidName},
		{"task command bad workflow", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Workflow = "a>b" })
		}, protocol.ErrInvalidName},
		{"task command missing state", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.State = "" })
		}, protocol.ErrMissingField},
		{"task command branch below -1", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Branch = -2 })
		}, protocol.ErrInvalidField},
		{"task command single-task branch", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Branch = -1 })
		}, nil},
		{"task command missing kind", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Task.Kind = "" })
		}, protocol.ErrInvalidName},
		{"task command negative attempt timeout", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Task.AttemptTimeout = -1 })
		}, protocol.ErrInvalidField},
		{"task command unknown retry mode", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Task.Retry.Mode = "" })
		}, protocol.ErrInvalidField},
		{"task command negative retry delay", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Task.Retry.MaxDelay = -1 })
		}, protocol.ErrInvalidField},
		{"task command jitter NaN", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Task.Retry.Jitter = math.NaN() })
		}, protocol.ErrInvalidField},
		{"task command jitter above 1", func(t *testing.T) protocol.Message {
			return mutate(t, "task_command", func(m *protocol.TaskCommand) { m.Task.Retry.Jitter = 1.5 })
		}, protocol.ErrInvalidField},
		{"task result unknown status", func(t *testing.T) protocol.Message {
			return mutate(t, "task_result", func(m *protocol.TaskResult) { m.Status = "maybe" })
		}, protocol.ErrInvalidField},
		{"task result failed without error", func(t *testing.T) protocol.Message {
			return mutate(t, "task_result", func(m *protocol.TaskResult) { m.Error = nil })
		}, protocol.ErrMissingField},
		{"task result ok single task without next", func(t *testing.T) protocol.Message {
			return &protocol.TaskResult{V: 1, RunID: "r", Branch: -1, Status: protocol.ResultOK}
		}, protocol.ErrMissingField},
		{"task result ok branch without next", func(t *testing.T) protocol.Message {
			return &protocol.TaskResult{V: 1, RunID: "r", Branch: 0, Status: protocol.ResultOK}
		}, nil},
		{"task result split with bad join strategy", func(t *testing.T) protocol.Message {
			return mutate(t, "task_result", func(m *protocol.TaskResult) { m.Split.Join.Strategy = "most" })
		}, protocol.ErrInvalidField},
		{"task result split percentage out of range", func(t *testing.T) protocol.Message {
			return mutate(t, "task_result", func(m *protocol.TaskResult) { m.Split.Join.P = 1.5 })
		}, protocol.ErrInvalidField},
		{"task result split partial timeout without timeout", func(t *testing.T) protocol.Message {
			return mutate(t, "task_result", func(m *protocol.TaskResult) {
				m.Split.Join.Strategy = protocol.JoinPartialTimeout
				m.Split.Join.Timeout = 0
			})
		}, protocol.ErrInvalidField},
		{"task result split missing join state", func(t *testing.T) protocol.Message {
			return mutate(t, "task_result", func(m *protocol.TaskResult) { m.Split.Join.JoinState = "" })
		}, protocol.ErrMissingField},
		{"task result split task bad kind", func(t *testing.T) protocol.Message {
			return mutate(t, "task_result", func(m *protocol.TaskResult) { m.Split.Tasks[1].Kind = "x.y" })
		}, protocol.ErrInvalidName},
		{"run record unknown status", func(t *testing.T) protocol.Message {
			return mutate(t, "run_record", func(m *protocol.RunRecord) { m.Status = "paused" })
		}, protocol.ErrInvalidField},
		{"run record missing state", func(t *testing.T) protocol.Message {
			return mutate(t, "run_record", func(m *protocol.RunRecord) { m.State = "" })
		}, protocol.ErrMissingField},
		{"run record bad id", func(t *testing.T) protocol.Message {
			return mutate(t, "run_record", func(m *protocol.RunRecord) { m.ID = "" })
		}, protocol.ErrInvalidName},
		{"branch outcome negative index", func(t *testing.T) protocol.Message {
			return mutate(t, "branch_outcome", func(m *protocol.BranchOutcome) { m.Index = -1 })
		}, protocol.ErrInvalidField},
		{"branch outcome unknown status", func(t *testing.T) protocol.Message {
			return mutate(t, "branch_outcome", func(m *protocol.BranchOutcome) { m.Status = "" })
		}, protocol.ErrInvalidField},
		{"event missing type", func(t *testing.T) protocol.Message {
			return mutate(t, "event", func(m *protocol.Event) { m.Type = "" })
		}, protocol.ErrMissingField},
		{"event missing run id", func(t *testing.T) protocol.Message {
			return mutate(t, "event", func(m *protocol.Event) { m.RunID = "" })
		}, protocol.ErrMissingField},
		{"cancel request bad run id", func(t *testing.T) protocol.Message {
			return mutate(t, "cancel_request", func(m *protocol.CancelRequest) { m.RunID = "r/1" })
		}, protocol.ErrInvalidName},
		{"cancel notice missing run id", func(t *testing.T) protocol.Message {
			return mutate(t, "cancel_notice", func(m *protocol.CancelNotice) { m.RunID = "" })
		}, protocol.ErrInvalidName},
		{"timer fire unknown kind", func(t *testing.T) protocol.Message {
			return mutate(t, "timer_fire", func(m *protocol.TimerFire) { m.Kind = "alarm" })
		}, protocol.ErrInvalidField},
		{"definition bad name", func(t *testing.T) protocol.Message {
			return mutate(t, "definition", func(m *protocol.Definition) { m.Name = "" })
		}, protocol.ErrInvalidName},
		{"definition bad version", func(t *testing.T) protocol.Message {
			return mutate(t, "definition", func(m *protocol.Definition) { m.Version = "1.2" })
		}, protocol.ErrInvalidName},
		{"definition bad queue", func(t *testing.T) protocol.Message {
			return mutate(t, "definition", func(m *protocol.Definition) { m.Queue = "" })
		}, protocol.ErrInvalidName},
		{"definition state without name", func(t *testing.T) protocol.Message {
			return mutate(t, "definition", func(m *protocol.Definition) { m.States[0].Name = "" })
		}, protocol.ErrMissingField},
		{"definition single state without task", func(t *testing.T) protocol.Message {
			return mutate(t, "definition", func(m *protocol.Definition) { m.States[0].Task = nil })
		}, protocol.ErrMissingField},
		{"definition split state without split", func(t *testing.T) protocol.Message {
			return mutate(t, "definition", func(m *protocol.Definition) { m.States[1].Split = nil })
		}, protocol.ErrMissingField},
		{"definition unknown state kind", func(t *testing.T) protocol.Message {
			return mutate(t, "definition", func(m *protocol.Definition) { m.States[1].Kind = "loop" })
		}, protocol.ErrInvalidField},
		{"breaker state missing name", func(t *testing.T) protocol.Message {
			return mutate(t, "breaker_state", func(m *protocol.BreakerState) { m.Name = "" })
		}, protocol.ErrMissingField},
		{"breaker state unknown phase", func(t *testing.T) protocol.Message {
			return mutate(t, "breaker_state", func(m *protocol.BreakerState) { m.Phase = "ajar" })
		}, protocol.ErrInvalidField},
		{"schedule bad id", func(t *testing.T) protocol.Message {
			return mutate(t, "schedule", func(m *protocol.Schedule) { m.ID = "a b" })
		}, protocol.ErrInvalidName},
		{"schedule bad workflow", func(t *testing.T) protocol.Message {
			return mutate(t, "schedule", func(m *protocol.Schedule) { m.Workflow = "" })
		}, protocol.ErrInvalidName},
		{"schedule cron without expression", func(t *testing.T) protocol.Message {
			return mutate(t, "schedule", func(m *protocol.Schedule) { m.Cron = "" })
		}, protocol.ErrMissingField},
		{"schedule every not positive", func(t *testing.T) protocol.Message {
			return mutate(t, "schedule", func(m *protocol.Schedule) { m.Kind = protocol.FlowEvery; m.Every = 0 })
		}, protocol.ErrInvalidField},
		{"schedule manual", func(t *testing.T) protocol.Message {
			return mutate(t, "schedule", func(m *protocol.Schedule) { m.Kind = protocol.FlowManual; m.Cron = "" })
		}, nil},
		{"schedule unknown kind", func(t *testing.T) protocol.Message {
			return mutate(t, "schedule", func(m *protocol.Schedule) { m.Kind = "yearly" })
		}, protocol.ErrInvalidField},
		{"schedule unknown misfire", func(t *testing.T) protocol.Message {
			return mutate(t, "schedule", func(m *protocol.Schedule) { m.Misfire = "retry" })
		}, protocol.ErrInvalidField},
		{"flow status missing id", func(t *testing.T) protocol.Message {
			return mutate(t, "flow_status", func(m *protocol.FlowStatus) { m.ID = "" })
		}, protocol.ErrMissingField},
		{"flow status unknown phase", func(t *testing.T) protocol.Message {
			return mutate(t, "flow_status", func(m *protocol.FlowStatus) { m.Phase = "" })
		}, protocol.ErrInvalidField},
		{"dead letter missing reason", func(t *testing.T) protocol.Message {
			return mutate(t, "dead_letter", func(m *protocol.DeadLetter) { m.Reason = "" })
		}, protocol.ErrMissingField},
		{"worker info missing id", func(t *testing.T) protocol.Message {
			return mutate(t, "worker_info", func(m *protocol.WorkerInfo) { m.ID = "" })
		}, protocol.ErrMissingField},
		{"worker info id too long", func(t *testing.T) protocol.Message {
			return mutate(t, "worker_info", func(m *protocol.WorkerInfo) { m.ID = strings.Repeat("w", protocol.MaxWorkerIDLen+1) })
		}, protocol.ErrInvalidField},
		{"worker info any id", func(t *testing.T) protocol.Message {
			return mutate(t, "worker_info", func(m *protocol.WorkerInfo) { m.ID = "host.example.com/7 é" })
		}, nil},
		{"worker info bad kind", func(t *testing.T) protocol.Message {
			return mutate(t, "worker_info", func(m *protocol.WorkerInfo) { m.Kinds = []string{"a.b"} })
		}, protocol.ErrInvalidName},
		{"worker info bad queue", func(t *testing.T) protocol.Message {
			return mutate(t, "worker_info", func(m *protocol.WorkerInfo) { m.Queues = []string{""} })
		}, protocol.ErrInvalidName},
		{"worker info unknown health", func(t *testing.T) protocol.Message {
			return mutate(t, "worker_info", func(m *protocol.WorkerInfo) { m.Health = "" })
		}, protocol.ErrInvalidField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := tc.msg(t)
			err := wirecodec.Validate(msg)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, err.Error(), "protocol: ", "the error names the package")

			// The decoder reports the same error for the same bytes.
			data, encErr := wirecodec.Encode(msg)
			require.NoError(t, encErr)
			back := caseFor(t, msg).zero()
			require.ErrorIs(t, wirecodec.Decode(data, back, 0), tc.want)
		})
	}
}

// caseFor returns the wire case of msg's type.
func caseFor(t *testing.T, msg protocol.Message) wireCase {
	t.Helper()
	for _, c := range wireCases() {
		if reflect.TypeOf(c.msg) == reflect.TypeOf(msg) {
			return c
		}
	}
	t.Fatalf("no wire case for %T", msg)
	return wireCase{}
}

func TestDecodeTriggerJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		workflow string // from the subject
		want     *protocol.Trigger
		wantErr  error
	}{
		{
			name: "nats pub body", body: `{"input": {"urls": ["https://a", "https://b"]}}`, workflow: "parallel_fetch",
			want: &protocol.Trigger{V: 1, Workflow: "parallel_fetch",
				Input: []byte(`{"urls": ["https://a", "https://b"]}`), InputFormat: protocol.InputJSON},
		},
		{
			name: "all fields", workflow: "from_subject",
			body: `{"v": 1, "workflow": "wf", "initial_state": "s", "input": 42, "run_id": "r1"}`,
			want: &protocol.Trigger{V: 1, Workflow: "wf", InitialState: "s", Input: []byte("42"),
				InputFormat: protocol.InputJSON, RunID: "r1"},
		},
		{name: "empty body", body: "", workflow: "wf", want: &protocol.Trigger{V: 1, Workflow: "wf"}},
		{name: "whitespace body", body: " \n", workflow: "wf", want: &protocol.Trigger{V: 1, Workflow: "wf"}},
		{name: "empty object", body: "{}", workflow: "wf", want: &protocol.Trigger{V: 1, Workflow: "wf"}},
		{name: "null input", body: `{"input": null}`, workflow: "wf", want: &protocol.Trigger{V: 1, Workflow: "wf"}},
		{name: "no workflow anywhere", body: `{"input": {}}`, wantErr: protocol.ErrMissingField},
		{name: "subject workflow not a token", body: `{"input": {}}`, workflow: "a.b", wantErr: protocol.ErrInvalidName},
		{name: "bad run id", body: `{"run_id": "r 1"}`, workflow: "wf", wantErr: protocol.ErrInvalidName},
		{name: "run id with idempotency key", body: `{"run_id": "r1", "idempotency_key": "k1"}`, workflow: "wf", wantErr: protocol.ErrInvalidField},
		{name: "not JSON", body: `input=1`, workflow: "wf", wantErr: protocol.ErrMalformed},
		{name: "truncated", body: `{"input": {"a": 1`, workflow: "wf", wantErr: protocol.ErrMalformed},
		{name: "array body", body: `[1]`, workflow: "wf", wantErr: protocol.ErrMalformed},
		{name: "wrong field type", body: `{"run_id": 5}`, workflow: "wf", wantErr: protocol.ErrMalformed},
		{name: "schema version 2", body: `{"v": 2}`, workflow: "wf", wantErr: protocol.ErrSchemaVersion},
		{name: "too large", body: `{"input": "` + strings.Repeat("a", protocol.MaxPayloadDefault) + `"}`, workflow: "wf", wantErr: protocol.ErrTooLarge},
		{
			name: "start at", body: `{"start_at": "2026-01-01T00:00:01.5Z"}`, workflow: "wf",
			want: &protocol.Trigger{V: protocol.SchemaVersion4, Workflow: "wf", StartAt: t0 + 1500000000},
		},
		{
			name: "start in", body: `{"start_in": "90s"}`, workflow: "wf",
			want: &protocol.Trigger{V: protocol.SchemaVersion4, Workflow: "wf", StartAt: t0 + 90000000000},
		},
		{name: "start in zero starts now", body: `{"start_in": "0s"}`, workflow: "wf",
			want: &protocol.Trigger{V: protocol.SchemaVersion4, Workflow: "wf", StartAt: t0}},
		{name: "start at and start in", body: `{"start_at": "2026-01-01T00:00:00Z", "start_in": "1m"}`, workflow: "wf", wantErr: protocol.ErrInvalidField},
		{name: "start at not a time", body: `{"start_at": "tomorrow"}`, workflow: "wf", wantErr: protocol.ErrInvalidField},
		{name: "start at before 1970", body: `{"start_at": "1960-01-01T00:00:00Z"}`, workflow: "wf", wantErr: protocol.ErrInvalidField},
		{name: "start in not a duration", body: `{"start_in": "5 minutes"}`, workflow: "wf", wantErr: protocol.ErrInvalidField},
		{name: "start in negative", body: `{"start_in": "-5m"}`, workflow: "wf", wantErr: protocol.ErrInvalidField},
		{name: "start at after 2262", body: `{"start_at": "2999-01-01T00:00:00Z"}`, workflow: "wf", wantErr: protocol.ErrInvalidField},
		{name: "start in past 2262", body: `{"start_in": "2500000h"}`, workflow: "wf", wantErr: protocol.ErrInvalidField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := wirecodec.DecodeTriggerJSON([]byte(tc.body), tc.workflow, 0, time.Unix(0, t0))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeTriggerJSONMaxPayload(t *testing.T) {
	t.Parallel()
	body := []byte(`{"input": {}}`)
	_, err := wirecodec.DecodeTriggerJSON(body, "wf", len(body)-1, time.Time{})
	require.ErrorIs(t, err, protocol.ErrTooLarge)
	_, err = wirecodec.DecodeTriggerJSON(body, "wf", len(body), time.Time{})
	require.NoError(t, err)
}

func TestTerminal(t *testing.T) {
	t.Parallel()
	for _, s := range protocol.RunStatuses() {
		require.Equal(t, s != protocol.RunRunning && s != protocol.RunScheduled, s.Terminal(), s)
	}
	require.False(t, protocol.RunStatus("").Terminal())
	require.True(t, protocol.EventCompleted.Terminal())
	require.True(t, protocol.EventFailed.Terminal())
	require.True(t, protocol.EventCancelled.Terminal())
	require.False(t, protocol.EventState.Terminal())
	// RunStatuses returns a fresh slice.
	s := protocol.RunStatuses()
	s[0] = "changed"
	require.Equal(t, protocol.RunScheduled, protocol.RunStatuses()[0])
}

// A split whose branches differ only in parameters travels compact; Len and
// Task read both forms the same; mixed or inconsistent forms are refused.
func TestSplitSpecCompact(t *testing.T) {
	withTimeout := func(s protocol.TaskSpec) protocol.TaskSpec { s.AttemptTimeout = 1e9; return s }
	withBreaker := func(s protocol.TaskSpec, threshold uint32) protocol.TaskSpec {
		s.Breaker, s.BreakerPolicy = "dep", &protocol.BreakerPolicy{FailureThreshold: threshold, ResetTimeout: 1e9, HalfOpenMaxCalls: 1}
		return s
	}
	task := func(kind string, params string, retries uint32) protocol.TaskSpec {
		return protocol.TaskSpec{Kind: kind, Params: []byte(params),
			Retry: protocol.RetryPolicy{Mode: protocol.RetryExponential, MaxRetries: retries}}
	}
	for _, tc := range []struct {
		name    string
		tasks   []protocol.TaskSpec
		compact bool
	}{
		{"same kind and config", []protocol.TaskSpec{task("a", "1", 3), task("a", "2", 3), task("a", "", 3)}, true},
		{"kinds differ", []protocol.TaskSpec{task("a", "1", 3), task("b", "2", 3)}, false},
		{"retry differs", []protocol.TaskSpec{task("a", "1", 3), task("a", "2", 4)}, false},
		{"attempt timeout differs", []protocol.TaskSpec{task("a", "1", 3), withTimeout(task("a", "2", 3))}, false},
		{"breaker differs", []protocol.TaskSpec{task("a", "1", 3), withBreaker(task("a", "2", 3), 5)}, false},
		{"breaker policy differs", []protocol.TaskSpec{withBreaker(task("a", "1", 3), 5), withBreaker(task("a", "2", 3), 6)}, false},
		{"same breaker policy", []protocol.TaskSpec{withBreaker(task("a", "1", 3), 5), withBreaker(task("a", "2", 3), 5)}, true},
		{"one branch", []protocol.TaskSpec{task("a", "1", 3)}, false},
		{"no branch", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &protocol.SplitSpec{Tasks: slices.Clone(tc.tasks), Join: protocol.JoinSpec{Strategy: protocol.JoinAll, JoinState: "j"}}
			s.Compact()
			require.Equal(t, tc.compact, s.Common != nil)
			require.Equal(t, len(tc.tasks), s.Len())
			for i, want := range tc.tasks {
				got := s.Task(i)
				if len(want.Params) == 0 {
					want.Params = nil
				}
				if len(got.Params) == 0 {
					got.Params = nil
				}
				require.Equal(t, want, got, "branch %d", i)
			}
			rec := &protocol.SplitSpecRecord{V: protocol.SchemaVersion, Spec: *s}
			data, err := wirecodec.Encode(rec)
			require.NoError(t, err)
			var back protocol.SplitSpecRecord
			require.NoError(t, wirecodec.Decode(data, &back, 0))
			require.Equal(t, s.Len(), back.Spec.Len())
			for i := range tc.tasks {
				a, b := s.Task(i), back.Spec.Task(i)
				if len(a.Params) == 0 && len(b.Params) == 0 {
					a.Params, b.Params = nil, nil
				}
				require.Equal(t, a, b, "branch %d after a round trip", i)
			}
		})
	}
	t.Run("mixed forms refused", func(t *testing.T) {
		join := protocol.JoinSpec{Strategy: protocol.JoinAll, JoinState: "j"}
		for _, s := range []protocol.SplitSpec{
			{Tasks: []protocol.TaskSpec{task("a", "1", 3)}, Common: &protocol.TaskSpec{Kind: "a"}, Params: [][]byte{nil}, Join: join},
			{Params: [][]byte{nil}, Join: join},
			{Common: &protocol.TaskSpec{Kind: "a"}, Join: join},
			{Common: &protocol.TaskSpec{Kind: "a"}, Params: [][]byte{nil}, Join: join},
		} {
			data, err := wirecodec.Encode(&protocol.SplitSpecRecord{V: protocol.SchemaVersion, Spec: s})
			require.NoError(t, err)
			err = wirecodec.Decode(data, new(protocol.SplitSpecRecord), 0)
			require.ErrorIs(t, err, protocol.ErrInvalidField)
		}
	})
}

// Messages that may carry a SchemaVersion2 form accept versions 1 and 2
// (definitions also 3); every other type, and a higher version, is refused,
// so an older build refuses a form it would misread.
func TestSchemaVersion2(t *testing.T) {
	cmd := func(v uint16) []byte {
		b, err := wirecodec.Encode(&protocol.TaskCommand{V: v, RunID: "r1", Workflow: "wf", State: "s", Branch: -1,
			Task: protocol.TaskSpec{Kind: "k", Retry: protocol.RetryPolicy{Mode: protocol.RetryNone}}, InputInRecord: true})
		require.NoError(t, err)
		return b
	}
	require.NoError(t, wirecodec.Decode(cmd(1), new(protocol.TaskCommand), 0))
	require.NoError(t, wirecodec.Decode(cmd(2), new(protocol.TaskCommand), 0))
	require.ErrorIs(t, wirecodec.Decode(cmd(3), new(protocol.TaskCommand), 0), protocol.ErrSchemaVersion)
	// A definition with a compact static split (fsm.CompactSplitMin).
	def := func(v uint16) []byte {
		task := protocol.TaskSpec{Kind: "k", Retry: protocol.RetryPolicy{Mode: protocol.RetryNone}}
		b, err := wirecodec.Encode(&protocol.Definition{V: v, Name: "wf", Version: "v1", Initial: "s", Queue: "default",
			States: []protocol.StateDef{{Name: "s", Kind: protocol.StateSplit, Split: &protocol.SplitSpec{
				Common: &task, Params: [][]byte{{0xc0}, {0xc0}},
				Join: protocol.JoinSpec{Strategy: protocol.JoinAll, JoinState: "done"}}}},
			Exits: []string{"done"}})
		require.NoError(t, err)
		return b
	}
	require.NoError(t, wirecodec.Decode(def(2), new(protocol.Definition), 0))
	// Definitions also have a version 3 (routed failures, StateDef.OnFailure).
	require.NoError(t, wirecodec.Decode(def(3), new(protocol.Definition), 0))
	require.ErrorIs(t, wirecodec.Decode(def(4), new(protocol.Definition), 0), protocol.ErrSchemaVersion)
	cancel, err := wirecodec.Encode(&protocol.CancelRequest{V: 2, RunID: "r1"})
	require.NoError(t, err)
	require.ErrorIs(t, wirecodec.Decode(cancel, new(protocol.CancelRequest), 0), protocol.ErrSchemaVersion)
	// Triggers have versions 1 to 4 (4: a run that starts later).
	trig := func(v uint16) []byte {
		b, err := wirecodec.Encode(&protocol.Trigger{V: v, Workflow: "wf", StartAt: 1})
		require.NoError(t, err)
		return b
	}
	for v := uint16(1); v <= 4; v++ {
		require.NoError(t, wirecodec.Decode(trig(v), new(protocol.Trigger), 0), v)
	}
	require.ErrorIs(t, wirecodec.Decode(trig(5), new(protocol.Trigger), 0), protocol.ErrSchemaVersion)
}
