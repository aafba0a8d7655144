package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

// at is the fake clock of the history tests: second k after t0.
func at(k int) time.Time { return t0.Add(time.Duration(k) * time.Second) }

func ns(k int) int64 { return at(k).UnixNano() }

// done is a task result for the record's current step, reported by worker
// w after attempts, its final attempt having begun at second k-1 and run
// for 300ms.
func done(rec *protocol.RunRecord, next St, w string, attempts uint32, k int) engine.Input {
	return engine.Input{Result: &protocol.TaskResult{V: 1, RunID: rec.ID, Step: rec.Step, Branch: -1, Status: protocol.ResultOK,
		Next: string(next), Attempts: attempts, Worker: w, AttemptStarted: ns(k - 1), AttemptDuration: int64(300 * time.Millisecond)}}
}

func step(t *testing.T, m *engine.Machine, rec *protocol.RunRecord, in engine.Input, k int) *protocol.RunRecord {
	t.Helper()
	out, fx, err := engine.Apply(m, rec, in, at(k))
	require.NoError(t, err)
	require.True(t, fx.Changed)
	return out
}

func TestHistory(t *testing.T) {
	t.Parallel()
	chain := fsm.New[St]("chain", A).Register(A, noop{}).Register(B, noop{}).Exit(Done)
	branches := []fsm.Task{noop{"0"}, noop{"1"}, noop{"2"}, noop{"3"}}
	split := func(s join.Strategy, timeout time.Duration) *fsm.Workflow[St] {
		return fsm.New[St]("split", Split).RegisterSplit(Split, branches, fsm.JoinConfig[St]{
			Strategy: s, JoinState: B, Timeout: timeout}).Register(B, noop{}).Exit(Done)
	}
	ms := int64(300 * time.Millisecond)
	boom := &protocol.ErrorInfo{Category: protocol.CategoryRetryExhausted, Message: "retry_exhausted: all 4 attempts failed: boom", Attempts: 4,
		Cause: &protocol.ErrorInfo{Category: protocol.CategoryTaskExecution, Message: "boom"}}
	branchResult := func(rec *protocol.RunRecord, i int32, err *protocol.ErrorInfo) engine.Input {
		r := &protocol.TaskResult{V: 1, RunID: rec.ID, Step: rec.Step, Branch: i, Status: protocol.ResultOK, Attempts: 1, Worker: "w"}
		if err != nil {
			r.Status, r.Error, r.Attempts = protocol.ResultFailed, err, 2
		}
		return engine.Input{Result: r}
	}
	timeout := &protocol.ErrorInfo{Category: protocol.CategoryTimeout, Message: "timeout: task attempt exceeded attempt_timeout (1s)"}

	tests := []struct {
		name   string
		wf     *fsm.Workflow[St]
		run    func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord
		status protocol.RunStatus
		want   []protocol.Step
		totals protocol.RunTotals
	}{
		{
			name: "task steps",
			wf:   chain,
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				rec = step(t, m, rec, done(rec, B, "w1", 1, 1), 1)
				return step(t, m, rec, done(rec, Done, "w2", 1, 3), 3)
			},
			status: protocol.RunCompleted,
			want: []protocol.Step{
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(1), Outcome: protocol.StepOK,
					Attempts: 1, Worker: "w1", AttemptStarted: ns(0), AttemptDuration: ms},
				{Seq: 1, State: "b", Kind: protocol.StepTask, Entered: ns(1), Left: ns(3), Outcome: protocol.StepOK,
					Attempts: 1, Worker: "w2", AttemptStarted: ns(2), AttemptDuration: ms},
				{Seq: 2, State: "done", Kind: protocol.StepExit, Entered: ns(3), Left: ns(3), Outcome: protocol.StepOK},
			},
			totals: protocol.RunTotals{Steps: 3, Attempts: 2},
		},
		{
			name: "retried then succeeded",
			wf:   chain,
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				return step(t, m, rec, done(rec, B, "w9", 3, 5), 5)
			},
			status: protocol.RunRunning,
			want: []protocol.Step{
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(5), Outcome: protocol.StepOK,
					Attempts: 3, Worker: "w9", AttemptStarted: ns(4), AttemptDuration: ms},
				{Seq: 1, State: "b", Kind: protocol.StepTask, Entered: ns(5)},
			},
			totals: protocol.RunTotals{Steps: 2, Attempts: 3, FailedAttempts: 2},
		},
		{
			name: "failed task",
			wf:   chain,
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				in := engine.Input{Result: &protocol.TaskResult{V: 1, RunID: rec.ID, Step: 0, Branch: -1, Status: protocol.ResultFailed,
					Error: boom, Attempts: 4, Worker: "w3", AttemptStarted: ns(6), AttemptDuration: ms}}
				return step(t, m, rec, in, 7)
			},
			status: protocol.RunFailed,
			want: []protocol.Step{
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(7), Outcome: protocol.StepFailed,
					Attempts: 4, Worker: "w3", AttemptStarted: ns(6), AttemptDuration: ms,
					Error: &protocol.ErrorInfo{Category: protocol.CategoryRetryExhausted, Message: boom.Message}},
			},
			totals: protocol.RunTotals{Steps: 1, Attempts: 4, FailedAttempts: 4, FailedTasks: 1},
		},
		{
			name: "refused by an open circuit breaker: no attempt made",
			wf:   chain,
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				open := &protocol.ErrorInfo{Category: protocol.CategoryCircuitOpen, Message: "circuit_open: breaker \"pay\" is open"}
				in := engine.Input{Result: &protocol.TaskResult{V: 1, RunID: rec.ID, Step: 0, Branch: -1, Status: protocol.ResultFailed,
					Error: open, Attempts: 0, Worker: "w4"}}
				rec = step(t, m, rec, in, 7)
				require.NotNil(t, rec.Error)
				require.Zero(t, rec.Error.Attempts, "the run's error names no attempt")
				return rec
			},
			status: protocol.RunFailed,
			want: []protocol.Step{
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(7), Outcome: protocol.StepFailed,
					Worker: "w4", Error: &protocol.ErrorInfo{Category: protocol.CategoryCircuitOpen, Message: "circuit_open: breaker \"pay\" is open"}},
			},
			totals: protocol.RunTotals{Steps: 1, FailedTasks: 1},
		},
		{
			name: "split with a quorum join decided early",
			wf:   split(join.Quorum(2), 0),
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				rec = step(t, m, rec, branchResult(rec, 3, nil), 1)
				rec = step(t, m, rec, branchResult(rec, 0, timeout), 2)
				return step(t, m, rec, branchResult(rec, 1, nil), 3)
			},
			status: protocol.RunRunning,
			want: []protocol.Step{
				{Seq: 0, State: "split", Kind: protocol.StepSplit, Entered: ns(0), Left: ns(3), Outcome: protocol.StepOK,
					Split: &protocol.SplitSummary{Strategy: protocol.JoinQuorum, Required: 2, Total: 4, Succeeded: 2,
						TimedOut: 1, Cancelled: 1, Decision: "satisfied"}},
				{Seq: 1, State: "b", Kind: protocol.StepJoin, Entered: ns(3)},
			},
			totals: protocol.RunTotals{Steps: 2, Attempts: 4, FailedAttempts: 2, FailedTasks: 1},
		},
		{
			name: "join timeout fails the split",
			wf:   split(join.Quorum(3), time.Second),
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				rec = step(t, m, rec, branchResult(rec, 1, nil), 1)
				rec = step(t, m, rec, branchResult(rec, 2, boom), 1)
				timer := &protocol.TimerFire{V: 1, Kind: protocol.TimerJoin, RunID: rec.ID, Step: 0, At: ns(1)}
				return step(t, m, rec, engine.Input{Timer: timer}, 1)
			},
			status: protocol.RunFailed,
			want: []protocol.Step{
				{Seq: 0, State: "split", Kind: protocol.StepSplit, Entered: ns(0), Left: ns(1), Outcome: protocol.StepFailed,
					Split: &protocol.SplitSummary{Strategy: protocol.JoinQuorum, Required: 3, Total: 4, Succeeded: 1,
						Failed: 1, Cancelled: 2, Decision: "failed", JoinTimeout: true},
					Error: &protocol.ErrorInfo{Category: protocol.CategoryWorkflow, Message: "workflow: split task timeout exceeded: " +
						"1 of 4 tasks completed successfully, strategy: quorum(3); errors: task 2: retry_exhausted: all 4 attempts failed: boom"}},
			},
			totals: protocol.RunTotals{Steps: 1, Attempts: 3, FailedAttempts: 2, FailedTasks: 1},
		},
		{
			name: "dynamic split in the task's state",
			wf:   chain,
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				spec, err := fsmbridge.SplitSpec(fsm.SplitInto(fsm.JoinConfig[St]{Strategy: join.All(), JoinState: B}, noop{"x"}, noop{"y"}))
				require.NoError(t, err)
				in := done(rec, "", "w1", 1, 1)
				in.Result.Split = spec
				rec = step(t, m, rec, in, 1)
				for i := range int32(2) {
					in := branchResult(rec, i, nil)
					in.DynamicSplit = spec
					rec = step(t, m, rec, in, 2)
				}
				return rec
			},
			status: protocol.RunRunning,
			want: []protocol.Step{
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(1), Outcome: protocol.StepSplitReturned,
					Attempts: 1, Worker: "w1", AttemptStarted: ns(0), AttemptDuration: ms},
				{Seq: 1, State: "a", Kind: protocol.StepSplit, Entered: ns(1), Left: ns(2), Outcome: protocol.StepOK,
					Split: &protocol.SplitSummary{Strategy: protocol.JoinAll, Required: 2, Dynamic: true, Total: 2, Succeeded: 2, Decision: "satisfied"}},
				{Seq: 2, State: "b", Kind: protocol.StepJoin, Entered: ns(2)},
			},
			totals: protocol.RunTotals{Steps: 3, Attempts: 3},
		},
		{
			name: "cancelled in a task",
			wf:   chain,
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				return step(t, m, rec, engine.Input{Cancel: &protocol.CancelRequest{V: 1, RunID: rec.ID, Reason: "operator"}}, 2)
			},
			status: protocol.RunCancelled,
			want: []protocol.Step{
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(2), Outcome: protocol.StepCancelled,
					Error: &protocol.ErrorInfo{Category: protocol.CategoryCancelled, Message: "cancelled: run cancelled: operator"}},
			},
			totals: protocol.RunTotals{Steps: 1},
		},
		{
			name: "a task names an unregistered state",
			wf:   chain,
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				return step(t, m, rec, done(rec, Ghost, "w1", 1, 1), 1)
			},
			status: protocol.RunFailed,
			want: []protocol.Step{
				// The step whose task chose the unknown state fails; the
				// run never enters it.
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(1), Outcome: protocol.StepFailed,
					Attempts: 1, Worker: "w1", AttemptStarted: ns(0), AttemptDuration: ms,
					Error: &protocol.ErrorInfo{Category: protocol.CategoryWorkflow,
						Message: `workflow: its task chose state "ghost", which the workflow does not define`}},
			},
			totals: protocol.RunTotals{Steps: 1, Attempts: 1},
		},
		{
			name: "transition cap fails the step that asked for one more",
			wf:   fsm.New[St]("capped", A).Register(A, noop{}).Register(B, noop{}).Exit(Done).MaxTransitions(2),
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				rec = step(t, m, rec, done(rec, B, "w1", 1, 1), 1)
				return step(t, m, rec, done(rec, A, "w1", 1, 2), 2)
			},
			status: protocol.RunFailed,
			want: []protocol.Step{
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(1), Outcome: protocol.StepOK,
					Attempts: 1, Worker: "w1", AttemptStarted: ns(0), AttemptDuration: ms},
				{Seq: 1, State: "b", Kind: protocol.StepTask, Entered: ns(1), Left: ns(2), Outcome: protocol.StepFailed,
					Attempts: 1, Worker: "w1", AttemptStarted: ns(1), AttemptDuration: ms,
					Error: &protocol.ErrorInfo{Category: protocol.CategoryWorkflow,
						Message: `workflow: transition cap reached: 2 state entries (next state "a")`}},
			},
			totals: protocol.RunTotals{Steps: 2, Attempts: 2},
		},
		{
			name: "cancelled during a split: counts without a decision",
			wf:   split(join.All(), 0),
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				rec = step(t, m, rec, branchResult(rec, 2, nil), 1)
				return step(t, m, rec, engine.Input{Cancel: &protocol.CancelRequest{V: 1, RunID: rec.ID}}, 2)
			},
			status: protocol.RunCancelled,
			want: []protocol.Step{
				{Seq: 0, State: "split", Kind: protocol.StepSplit, Entered: ns(0), Left: ns(2), Outcome: protocol.StepCancelled,
					Split: &protocol.SplitSummary{Strategy: protocol.JoinAll, Required: 4, Total: 4, Succeeded: 1, Cancelled: 3},
					Error: &protocol.ErrorInfo{Category: protocol.CategoryCancelled, Message: "cancelled: run cancelled"}},
			},
			totals: protocol.RunTotals{Steps: 1, Attempts: 1},
		},
		{
			name: "workflow timeout",
			wf:   fsm.New[St]("slow", A).Register(A, noop{}).Register(B, noop{}).Exit(Done).TotalTimeout(time.Minute),
			run: func(t *testing.T, m *engine.Machine, rec *protocol.RunRecord) *protocol.RunRecord {
				timer := &protocol.TimerFire{V: 1, Kind: protocol.TimerRunDeadline, RunID: rec.ID, At: rec.Deadline}
				return step(t, m, rec, engine.Input{Timer: timer}, 60)
			},
			status: protocol.RunFailed,
			want: []protocol.Step{
				{Seq: 0, State: "a", Kind: protocol.StepTask, Entered: ns(0), Left: ns(60), Outcome: protocol.StepFailed,
					Error: &protocol.ErrorInfo{Category: protocol.CategoryWorkflowTimeout,
						Message: "workflow_timeout: workflow exceeded its total timeout: elapsed 1m0s, limit 1m0s"}},
			},
			totals: protocol.RunTotals{Steps: 1},
		},
		{
			name: "initial exit state",
			wf:   chain,
			run: func(t *testing.T, m *engine.Machine, _ *protocol.RunRecord) *protocol.RunRecord {
				rec, _, err := engine.Start(m, &protocol.Trigger{V: 1, Workflow: "chain", InitialState: "done"}, "run2", at(0))
				require.NoError(t, err)
				return rec
			},
			status: protocol.RunCompleted,
			want: []protocol.Step{
				{Seq: 0, State: "done", Kind: protocol.StepExit, Entered: ns(0), Left: ns(0), Outcome: protocol.StepOK},
			},
			totals: protocol.RunTotals{Steps: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := machine(t, tc.wf)
			rec, _, err := engine.Start(m, &protocol.Trigger{V: 1, Workflow: m.Definition().Name}, "run1", at(0))
			require.NoError(t, err)
			rec = tc.run(t, m, rec)
			require.Equal(t, tc.status, rec.Status)
			require.Equal(t, tc.want, rec.History)
			require.Equal(t, tc.totals, rec.Totals)
		})
	}
}

// A cycle past HistoryMax keeps the last HistoryMax steps; the totals count
// every step, attempt and dropped step.
func TestHistoryBounded(t *testing.T) {
	t.Parallel()
	m := machine(t, fsm.New[St]("loop", A).Register(A, noop{}).Register(B, noop{}).Exit(Done))
	rec, _ := start(t, m, A)
	const transitions = 250
	for k := 1; k <= transitions; k++ {
		next := B
		if rec.State == "b" {
			next = A
		}
		rec = step(t, m, rec, done(rec, next, "w", 2, k), k)
	}
	require.Len(t, rec.History, engine.HistoryMax)
	require.Equal(t, protocol.RunTotals{Steps: transitions + 1, Dropped: transitions + 1 - engine.HistoryMax,
		Attempts: 2 * transitions, FailedAttempts: transitions}, rec.Totals)
	first, last := rec.History[0], rec.History[engine.HistoryMax-1]
	require.Equal(t, uint32(transitions+1-engine.HistoryMax), first.Seq)
	require.Equal(t, ns(int(first.Seq)), first.Entered)
	require.Equal(t, uint32(transitions), last.Seq)
	require.Zero(t, last.Left, "the current step is open")
	for i := 1; i < len(rec.History); i++ {
		require.Equal(t, rec.History[i-1].Seq+1, rec.History[i].Seq)
		require.Equal(t, rec.History[i-1].Left, rec.History[i].Entered)
	}
}

// Apply never changes the record it was given, history included: two
// transitions from the same record do not see each other.
func TestHistoryApplyIsPure(t *testing.T) {
	t.Parallel()
	m := machine(t, fsm.New[St]("loop", A).Register(A, noop{}).Register(B, noop{}).Exit(Done))
	rec, _ := start(t, m, A)
	for k := 1; k <= engine.HistoryMax+5; k++ { // at the bound, so opening a step drops one
		next := B
		if rec.State == "b" {
			next = A
		}
		rec = step(t, m, rec, done(rec, next, "w", 1, k), k)
	}
	before, err := wirecodec.Encode(rec)
	require.NoError(t, err)
	atExit := step(t, m, rec, done(rec, Done, "w1", 1, 500), 500)
	cancelled := step(t, m, rec, engine.Input{Cancel: &protocol.CancelRequest{V: 1, RunID: rec.ID}}, 501)
	after, err := wirecodec.Encode(rec)
	require.NoError(t, err)
	require.Equal(t, before, after, "Apply changed its input record")
	require.Equal(t, protocol.StepExit, atExit.History[engine.HistoryMax-1].Kind)
	require.Equal(t, protocol.StepOK, atExit.History[engine.HistoryMax-2].Outcome)
	require.Equal(t, protocol.StepCancelled, cancelled.History[engine.HistoryMax-1].Outcome)
}

// A long error message is cut in the step (on a rune boundary); the run's
// own error keeps it whole.
func TestHistoryErrorCut(t *testing.T) {
	t.Parallel()
	m := machine(t, fsm.New[St]("chain", A).Register(A, noop{}).Exit(Done))
	rec, _ := start(t, m, A)
	long := strings.Repeat("é", protocol.StepErrorMax) // two bytes a rune
	in := engine.Input{Result: &protocol.TaskResult{V: 1, RunID: rec.ID, Branch: -1, Status: protocol.ResultFailed,
		Error: &protocol.ErrorInfo{Category: protocol.CategoryTaskExecution, Message: long}}}
	rec = step(t, m, rec, in, 1)
	msg := rec.History[0].Error.Message
	require.LessOrEqual(t, len(msg), protocol.StepErrorMax)
	require.True(t, strings.HasSuffix(msg, "…"))
	require.True(t, strings.HasPrefix(long, strings.TrimSuffix(msg, "…")))
	require.Equal(t, long, rec.Error.Message)
}

// The size of a record after a 10,000-transition cycle: the history part
// stays the same whatever the number of transitions (Path, cano's full
// list of states entered, grows with them, up to MaxTransitions).
func TestHistoryRecordSize(t *testing.T) {
	t.Parallel()
	m := machine(t, fsm.New[St]("loop", A).Register(A, noop{}).Register(B, noop{}).Exit(Done))
	rec, _ := start(t, m, A)
	size := func(rec *protocol.RunRecord) (all, withoutPath int) {
		data, err := wirecodec.Encode(rec)
		require.NoError(t, err)
		cp := *rec
		cp.Path = nil
		small, err := wirecodec.Encode(&cp)
		require.NoError(t, err)
		return len(data), len(small)
	}
	var at1000 int
	for k := 1; k < fsm.MaxTransitionsDefault; k++ {
		next := B
		if rec.State == "b" {
			next = A
		}
		rec = step(t, m, rec, done(rec, next, "worker-1", 1, k), k)
		if k == 1000 {
			_, at1000 = size(rec)
		}
	}
	require.Len(t, rec.Path, fsm.MaxTransitionsDefault)
	all, withoutPath := size(rec)
	t.Logf("record after %d transitions: %d bytes, %d without Path; history of %d steps", len(rec.Path)-1, all, withoutPath, len(rec.History))
	require.InDelta(t, at1000, withoutPath, 16, "the record without Path grows with the transitions")
}

// A record written before history was kept (none, no totals) goes on: the
// steps from then on are recorded.
func TestHistoryOnRecordWithoutHistory(t *testing.T) {
	t.Parallel()
	m := machine(t, fsm.New[St]("chain", A).Register(A, noop{}).Register(B, noop{}).Exit(Done))
	rec, _ := start(t, m, A)
	rec.History, rec.Totals = nil, protocol.RunTotals{}
	rec = step(t, m, rec, done(rec, B, "w1", 1, 1), 1)
	require.Equal(t, []protocol.Step{{Seq: 1, State: "b", Kind: protocol.StepTask, Entered: ns(1)}}, rec.History)
	require.Equal(t, protocol.RunTotals{Steps: 1, Attempts: 1}, rec.Totals)
}

// BenchmarkHistoryChain measures what the history costs a transition: a
// ten-state chain applied and its record encoded after each transition (as
// the coordinator writes it), with the history kept and with it cleared.
func BenchmarkHistoryChain(b *testing.B) {
	names := []St{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"}
	wf := fsm.New[St]("chain", names[0])
	for _, n := range names {
		wf.Register(n, noop{})
	}
	d, err := wf.Exit(Done).Definition()
	require.NoError(b, err)
	m, err := engine.Compile(d)
	require.NoError(b, err)
	for _, keep := range []bool{true, false} {
		name := "history"
		if !keep {
			name = "cleared"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			written := 0
			for b.Loop() {
				rec, _, _ := engine.Start(m, &protocol.Trigger{V: 1, Workflow: "chain"}, "run-01HZXABCDEFG", t0)
				for i := 1; i <= len(names); i++ {
					next := Done
					if i < len(names) {
						next = names[i]
					}
					in := engine.Input{Result: &protocol.TaskResult{RunID: rec.ID, Step: rec.Step, Branch: -1, Status: protocol.ResultOK,
						Next: string(next), Attempts: 1, Worker: "ip-10-0-0-7-4242", AttemptStarted: ns(i), AttemptDuration: 1234567}}
					rec, _, _ = engine.Apply(m, rec, in, at(i))
					if !keep {
						rec.History = nil
					}
					data, err := wirecodec.Encode(rec)
					if err != nil {
						b.Fatal(err)
					}
					written += len(data)
				}
			}
			b.ReportMetric(float64(written)/float64(b.N*len(names)), "B/write")
		})
	}
}
