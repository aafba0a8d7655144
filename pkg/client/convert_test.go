package client

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Unix nanoseconds of 2026-03-04 05:06:07.000000008 UTC, and that time.
const someNS = int64(1772600767000000008)

var someTime = time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)

func mustValue(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wirecodec.EncodeValue(v)
	require.NoError(t, err)
	return b
}

func TestTimeOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ns   int64
		want time.Time
	}{
		{"zero is not set, not 1970", 0, time.Time{}},
		{"one nanosecond after the epoch", 1, time.Unix(0, 1)},
		{"a time", someNS, someTime},
		{"before the epoch", -1, time.Unix(0, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := timeOf(tc.ns)
			require.True(t, tc.want.Equal(got), "got %s, want %s", got, tc.want)
			require.Equal(t, tc.ns == 0, got.IsZero())
		})
	}
}

func TestRunFromRecord(t *testing.T) {
	t.Parallel()
	failure := &protocol.ErrorInfo{Category: protocol.CategoryWorkflow, Message: "workflow: no way on",
		State: "b", Attempts: 2, Path: []string{"a", "b"}}
	for _, tc := range []struct {
		name  string
		rec   protocol.RunRecord
		check func(t *testing.T, r *Run)
	}{{
		name: "every field of a completed run",
		rec: protocol.RunRecord{V: 1, ID: "r1", Workflow: "order", DefVersion: "v2", Status: protocol.RunCompleted,
			State: "done", Step: 3, Path: []string{"a", "b", "done"}, Input: mustValue(t, map[string]int{"n": 7}),
			Output: mustValue(t, "shipped"), CreatedAt: someNS, UpdatedAt: someNS + int64(time.Second),
			Deadline: someNS + int64(time.Hour), CancelRequested: true, IdempotencyKey: "k", Flow: "nightly", Slot: someNS},
		check: func(t *testing.T, r *Run) {
			require.Equal(t, "r1", r.ID)
			require.Equal(t, "order", r.Workflow)
			require.Equal(t, "v2", r.Version)
			require.Equal(t, RunCompleted, r.Status)
			require.True(t, r.Status.Terminal())
			require.Equal(t, "done", r.State)
			require.Equal(t, 3, r.Step)
			require.Equal(t, []string{"a", "b", "done"}, r.Path)
			require.NoError(t, r.Err)
			require.True(t, someTime.Equal(r.CreatedAt))
			require.Equal(t, time.Second, r.UpdatedAt.Sub(r.CreatedAt))
			require.Equal(t, time.Hour, r.Deadline.Sub(r.CreatedAt))
			require.True(t, r.CancelRequested)
			require.Equal(t, "k", r.IdempotencyKey)
			require.Equal(t, "nightly", r.Flow)
			require.True(t, someTime.Equal(r.FlowSlot))
			var in map[string]int
			require.NoError(t, r.Input(&in))
			require.Equal(t, map[string]int{"n": 7}, in)
			var out string
			require.NoError(t, r.Output(&out))
			require.Equal(t, "shipped", out)
		},
	}, {
		name: "zero times stay zero; no input or output is ErrNoValue",
		rec:  protocol.RunRecord{ID: "r2", Workflow: "order", Status: protocol.RunRunning, State: "a"},
		check: func(t *testing.T, r *Run) {
			require.True(t, r.CreatedAt.IsZero(), "0 ns is not 1970")
			require.True(t, r.UpdatedAt.IsZero())
			require.True(t, r.Deadline.IsZero(), "no total timeout")
			require.True(t, r.FlowSlot.IsZero())
			require.False(t, r.Status.Terminal())
			var v any
			require.ErrorIs(t, r.Input(&v), ErrNoValue)
			require.ErrorIs(t, r.Output(&v), ErrNoValue)
			require.ErrorContains(t, r.Output(&v), "run r2 has no output")
		},
	}, {
		name: "a failure is a typed error with its state context",
		rec:  protocol.RunRecord{ID: "r3", Workflow: "order", Status: protocol.RunFailed, State: "b", Error: failure},
		check: func(t *testing.T, r *Run) {
			require.ErrorIs(t, r.Err, fsm.ErrWorkflow)
			require.NotErrorIs(t, r.Err, fsm.ErrCancelled)
			var se *fsm.StateError
			require.True(t, errors.As(r.Err, &se))
			require.Equal(t, "b", se.State)
			require.Equal(t, []string{"a", "b"}, se.Path)
		},
	}, {
		name: "a JSON input decodes as JSON",
		rec: protocol.RunRecord{ID: "r4", Workflow: "order", Status: protocol.RunRunning, State: "a",
			Input: []byte(`{"customer":"ada"}`), InputFormat: protocol.InputJSON},
		check: func(t *testing.T, r *Run) {
			var in struct{ Customer string }
			require.NoError(t, r.Input(&in))
			require.Equal(t, "ada", in.Customer)
		},
	}, {
		name: "bytes that do not fit are a clear error",
		rec: protocol.RunRecord{ID: "r5", Workflow: "order", Status: protocol.RunCompleted, State: "done",
			Input: []byte{0xc1}, Output: mustValue(t, "text")},
		check: func(t *testing.T, r *Run) {
			var n int
			require.ErrorIs(t, r.Input(&n), protocol.ErrMalformed)
			err := r.Output(&n)
			require.ErrorIs(t, err, protocol.ErrMalformed)
			require.ErrorContains(t, err, "run r5")
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, runFromRecord(&tc.rec))
		})
	}
}

func TestRunFromEvent(t *testing.T) {
	t.Parallel()
	ev := &protocol.Event{V: 1, Type: protocol.EventCancelled, RunID: "r1", Workflow: "order", State: "b", Step: 2,
		Status: protocol.RunCancelled, Time: someNS, Path: []string{"a", "b"},
		Error: &protocol.ErrorInfo{Category: protocol.CategoryCancelled, Message: "cancelled: by hand"}}
	r := runFromEvent(ev)
	require.Equal(t, RunCancelled, r.Status)
	require.Equal(t, "b", r.State)
	require.Equal(t, 2, r.Step)
	require.Equal(t, []string{"a", "b"}, r.Path)
	require.ErrorIs(t, r.Err, fsm.ErrCancelled)
	require.True(t, someTime.Equal(r.UpdatedAt), "ended at the event's time")
	require.True(t, r.CreatedAt.IsZero(), "not carried by the event")
	require.Empty(t, r.Version)
}

func TestEventFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ev   protocol.Event
		want Event
		out  any // the decoded output, nil for none
	}{{
		name: "a completed event with its output",
		ev: protocol.Event{V: 1, Type: protocol.EventCompleted, RunID: "r1", Workflow: "order", State: "done", Step: 2,
			Status: protocol.RunCompleted, Time: someNS, Path: []string{"a", "done"}, Output: mustValue(t, "ok")},
		want: Event{Type: EventCompleted, RunID: "r1", Workflow: "order", State: "done", Step: 2, Status: RunCompleted,
			Time: someTime.Local(), Path: []string{"a", "done"}},
		out: "ok",
	}, {
		name: "a breaker event: the run id is the breaker's name",
		ev: protocol.Event{V: 1, Type: protocol.EventBreaker, RunID: "payments", Workflow: protocol.BreakerEventWorkflow,
			State: string(protocol.BreakerOpen), Time: someNS, Detail: "closed -> open (epoch 3)"},
		want: Event{Type: EventBreaker, RunID: "payments", Workflow: "_breaker", State: string(BreakerOpen),
			Time: someTime.Local(), Detail: "closed -> open (epoch 3)"},
	}, {
		name: "a zero time stays zero",
		ev:   protocol.Event{V: 1, Type: protocol.EventState, RunID: "r1", Workflow: "order", State: "b"},
		want: Event{Type: EventState, RunID: "r1", Workflow: "order", State: "b"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := eventFrom(&tc.ev)
			require.Nil(t, got.Err)
			got.output = nil
			require.Equal(t, tc.want, got)
			got = eventFrom(&tc.ev)
			if tc.out == nil {
				var v any
				require.ErrorIs(t, got.Output(&v), ErrNoValue)
				return
			}
			var s string
			require.NoError(t, got.Output(&s))
			require.Equal(t, tc.out, s)
		})
	}

	t.Run("a rejected trigger's error matches its category", func(t *testing.T) {
		got := eventFrom(&protocol.Event{V: 1, Type: protocol.EventRejected, RunID: "r1", Workflow: "_",
			Error: &protocol.ErrorInfo{Category: protocol.CategoryConfiguration, Message: "configuration: unknown workflow"}})
		require.ErrorIs(t, got.Err, fsm.ErrConfiguration)
		require.False(t, got.Type.Terminal())
	})
}

func TestWorkerFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   protocol.WorkerInfo
		want WorkerInfo
	}{{
		name: "every field",
		in: protocol.WorkerInfo{V: 1, ID: "w1", Hostname: "h", PID: 42, Version: "(devel)", StartedAt: someNS,
			HeartbeatAt: someNS + int64(10*time.Second), HeartbeatInterval: int64(10 * time.Second),
			Kinds: []string{"a", "b"}, Queues: []string{"default"}, Concurrency: 8, InFlight: 3,
			Health: protocol.WorkerDegraded, HealthReason: "db: slow", Stopping: true},
		want: WorkerInfo{ID: "w1", Hostname: "h", PID: 42, Version: "(devel)", StartedAt: someTime.Local(),
			HeartbeatAt: someTime.Add(10 * time.Second).Local(), HeartbeatInterval: 10 * time.Second,
			Kinds: []string{"a", "b"}, Queues: []string{"default"}, Concurrency: 8, InFlight: 3,
			Health: WorkerDegraded, HealthReason: "db: slow", Stopping: true},
	}, {
		name: "zero times stay zero",
		in:   protocol.WorkerInfo{V: 1, ID: "w2", Health: protocol.WorkerHealthy},
		want: WorkerInfo{ID: "w2", Health: WorkerHealthy},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, workerFrom(&tc.in))
		})
	}
}

func TestBreakerFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   protocol.BreakerState
		want BreakerInfo
	}{{
		name: "an open breaker",
		in: protocol.BreakerState{V: 1, Name: "payments", Phase: protocol.BreakerOpen, ConsecutiveFailures: 5,
			OpenUntil: someNS + int64(time.Minute), Epoch: 7, UpdatedAt: someNS,
			Policy: protocol.BreakerPolicy{FailureThreshold: 5, ResetTimeout: int64(time.Minute), HalfOpenMaxCalls: 1}},
		want: BreakerInfo{Name: "payments", State: BreakerOpen, Failures: 5, OpenUntil: someTime.Add(time.Minute).Local(),
			Epoch: 7, UpdatedAt: someTime.Local(), FailureThreshold: 5, ResetTimeout: time.Minute, HalfOpenMaxCalls: 1},
	}, {
		name: "a half-open breaker: not open until anything",
		in: protocol.BreakerState{V: 1, Name: "p", Phase: protocol.BreakerHalfOpen, HalfOpenInFlight: 1,
			HalfOpenSuccesses: 2, Epoch: 8},
		want: BreakerInfo{Name: "p", State: BreakerHalfOpen, HalfOpenInFlight: 1, HalfOpenSuccesses: 2, Epoch: 8},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := breakerFrom(&tc.in)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.in.OpenUntil == 0, got.OpenUntil.IsZero())
		})
	}
}

func TestDeadLetterEntry(t *testing.T) {
	t.Parallel()
	stored := someTime.Add(time.Second)
	encode := func(dl protocol.DeadLetter) []byte {
		b, err := wirecodec.Encode(&dl)
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want DeadLetter
	}{{
		name: "the letter's own time",
		data: encode(protocol.DeadLetter{V: 1, Source: "trigger", Subject: "cano.trigger.x", Reason: "bad",
			Category: "rejected", Time: someNS, Data: []byte("d")}),
		want: DeadLetter{Seq: 9, Source: "trigger", Subject: "cano.trigger.x", Reason: "bad", Category: "rejected",
			Time: someTime.Local(), Data: []byte("d")},
	}, {
		name: "no time in the letter: when the stream stored it",
		data: encode(protocol.DeadLetter{V: 1, Source: "trigger", Subject: "cano.trigger.x", Reason: "bad", Category: "rejected"}),
		want: DeadLetter{Seq: 9, Source: "trigger", Subject: "cano.trigger.x", Reason: "bad", Category: "rejected", Time: stored},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, deadLetterEntry(9, stored, "cano.dlq.trigger", tc.data))
		})
	}
}

func TestStateFrom(t *testing.T) {
	t.Parallel()
	task := func(kind string) protocol.TaskSpec {
		return protocol.TaskSpec{Kind: kind, Retry: protocol.RetryPolicy{Mode: protocol.RetryNone}}
	}
	params := []byte{0x81, 0xa1, 'n', 0x01} // {"n": 1}
	single := protocol.TaskSpec{Kind: "charge", Params: params, AttemptTimeout: int64(2 * time.Second), Breaker: "pay",
		Retry: protocol.RetryPolicy{Mode: protocol.RetryExponential, MaxRetries: 3, BaseDelay: int64(100 * time.Millisecond),
			Multiplier: 2, MaxDelay: int64(5 * time.Second), Jitter: 0.1}}
	charge := StateInfo{Name: "pay", Kind: StateTask, Task: "charge", Params: params,
		Policy: &TaskPolicy{Retry: "exponential", MaxRetries: 3, Delay: 100 * time.Millisecond, Multiplier: 2,
			MaxDelay: 5 * time.Second, Jitter: 0.1, AttemptTimeout: 2 * time.Second, Breaker: "pay"}}
	none := &TaskPolicy{Retry: "none"}
	compact := &protocol.SplitSpec{Tasks: []protocol.TaskSpec{task("fetch"), task("fetch"), task("fetch")},
		Join: protocol.JoinSpec{Strategy: protocol.JoinQuorum, N: 2, JoinState: "merge", Timeout: int64(time.Second), Bulkhead: 2}}
	compact.Compact()
	require.NotNil(t, compact.Common, "the compact form is read too")
	for _, tc := range []struct {
		name string
		in   protocol.StateDef
		want StateInfo
	}{{
		name: "a task state: its parameters and policy; its task chooses the next state",
		in:   protocol.StateDef{Name: "pay", Kind: protocol.StateSingle, Task: &single},
		want: charge,
	}, {
		name: "a split: branch kinds, join and join state",
		in: protocol.StateDef{Name: "fan", Kind: protocol.StateSplit, Split: &protocol.SplitSpec{
			Tasks: []protocol.TaskSpec{task("a"), task("b")},
			Join:  protocol.JoinSpec{Strategy: protocol.JoinPercentage, P: 0.5, JoinState: "merge"}}},
		want: StateInfo{Name: "fan", Kind: StateSplit, Branches: []string{"a", "b"},
			Join: &JoinInfo{Strategy: "percentage", Percentage: 0.5, State: "merge"}, Next: []string{"merge"},
			BranchParams: [][]byte{nil, nil}, BranchPolicies: []*TaskPolicy{none, none}},
	}, {
		name: "a compact split",
		in:   protocol.StateDef{Name: "fan", Kind: protocol.StateSplit, Split: compact},
		want: StateInfo{Name: "fan", Kind: StateSplit, Branches: []string{"fetch", "fetch", "fetch"},
			Join: &JoinInfo{Strategy: "quorum", N: 2, State: "merge", Timeout: time.Second, Bulkhead: 2}, Next: []string{"merge"},
			BranchParams: [][]byte{nil, nil, nil}, BranchPolicies: []*TaskPolicy{none, none, none}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, stateFrom(&tc.in))
		})
	}

	t.Run("a definition lists its states, then its exits", func(t *testing.T) {
		var wi WorkflowInfo
		wi.describe(&protocol.Definition{V: 1, Name: "order", Version: "v1", Initial: "pay", Queue: "q",
			TotalTimeout: int64(time.Hour), MaxTransitions: 50,
			States: []protocol.StateDef{{Name: "pay", Kind: protocol.StateSingle, Task: &single}},
			Exits:  []string{"done", "refused"}})
		require.Equal(t, WorkflowInfo{Version: "v1", Initial: "pay", Queue: "q", TotalTimeout: time.Hour, MaxTransitions: 50,
			States: []StateInfo{charge, {Name: "done", Kind: StateExit},
				{Name: "refused", Kind: StateExit}}}, wi)
	})
}

// The client's names are the wire's: converting by type keeps the value.
func TestNamesMatchTheWire(t *testing.T) {
	t.Parallel()
	wire := protocol.RunStatuses()
	require.Len(t, RunStatuses(), len(wire))
	for i, s := range RunStatuses() {
		require.Equal(t, string(wire[i]), string(s))
		require.Equal(t, wire[i].Terminal(), s.Terminal())
	}
	for _, tc := range []struct {
		ours EventType
		wire protocol.EventType
	}{
		{EventScheduled, protocol.EventScheduled}, {EventStarted, protocol.EventStarted}, {EventState, protocol.EventState}, {EventSplit, protocol.EventSplit},
		{EventJoin, protocol.EventJoin}, {EventCompleted, protocol.EventCompleted}, {EventFailed, protocol.EventFailed},
		{EventCancelled, protocol.EventCancelled}, {EventBreaker, protocol.EventBreaker},
		{EventRejected, protocol.EventRejected}, {EventTaskRetried, protocol.EventTaskRetried},
	} {
		require.Equal(t, string(tc.wire), string(tc.ours))
		require.Equal(t, tc.wire.Terminal(), tc.ours.Terminal())
		require.Contains(t, EventTypes(), tc.ours)
	}
	require.Len(t, EventTypes(), 11)
	require.Equal(t, "_breaker", protocol.BreakerEventWorkflow, "named in EventBreaker's doc")
	for _, h := range [][2]string{{string(WorkerHealthy), string(protocol.WorkerHealthy)},
		{string(WorkerDegraded), string(protocol.WorkerDegraded)}, {string(WorkerUnhealthy), string(protocol.WorkerUnhealthy)},
		{string(BreakerClosed), string(protocol.BreakerClosed)}, {string(BreakerOpen), string(protocol.BreakerOpen)},
		{string(BreakerHalfOpen), string(protocol.BreakerHalfOpen)}} {
		require.Equal(t, h[1], h[0])
	}
}

func TestAwaitRecheck(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, 1600 * time.Millisecond},
		{5, AwaitRecheckDefault},
		{6, AwaitRecheckDefault},
		{1000, AwaitRecheckDefault},
	} {
		require.Equal(t, tc.want, awaitRecheck(tc.n), "re-read %d", tc.n)
	}
}
