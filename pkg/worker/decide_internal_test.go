package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestAdmit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		deadline  time.Time
		attempt   int
		cancelled bool
		want      admission
	}{
		{"first attempt runs", time.Time{}, 1, false, admitRun},
		{"last attempt runs", time.Time{}, 3, false, admitRun},
		{"cancelled is skipped", time.Time{}, 1, true, admitSkip},
		{"cancelled wins over abandon", time.Time{}, 9, true, admitSkip},
		{"deadline passed is skipped", now.Add(-time.Nanosecond), 1, false, admitSkip},
		{"deadline now is skipped", now, 1, false, admitSkip},
		{"deadline ahead runs", now.Add(time.Nanosecond), 1, false, admitRun},
		{"deadline passed wins over abandon", now.Add(-time.Second), 4, false, admitSkip},
		{"past the policy is abandoned", time.Time{}, 4, false, admitAbandon},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := &protocol.TaskCommand{Branch: -1}
			if !tc.deadline.IsZero() {
				cmd.Deadline = tc.deadline.UnixNano()
			}
			require.Equal(t, tc.want, admit(cmd, tc.attempt, 3, tc.cancelled, now))
		})
	}
}

func TestAbandoned(t *testing.T) {
	t.Parallel()
	err := abandoned(3)
	var ex *fsm.RetryExhaustedError
	require.ErrorAs(t, err, &ex)
	require.EqualValues(t, 3, ex.Attempts)
	require.ErrorContains(t, err, "attempt abandoned")
}

func TestAttemptErr(t *testing.T) {
	t.Parallel()
	cmd := &protocol.TaskCommand{Task: protocol.TaskSpec{AttemptTimeout: int64(2 * time.Second)}}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name                     string
		returned                 bool
		err, attemptCause, cause error
		want                     error // nil: want a timeout error
		wantNil                  bool
	}{
		{name: "success", returned: true, wantNil: true},
		{name: "success after the timeout is kept", returned: true, attemptCause: errAttemptTimeout, wantNil: true},
		{name: "task error", returned: true, err: boom, want: boom},
		{name: "task error on a cancelled context", returned: true, err: boom, attemptCause: context.Canceled, want: boom},
		{name: "task error after its timeout is a timeout", returned: true, err: boom, attemptCause: errAttemptTimeout},
		{name: "task ignored its timeout", attemptCause: errAttemptTimeout},
		{name: "cancel notice while running", attemptCause: errCancelledByRun, cause: errCancelledByRun, want: errCancelledByRun},
		{name: "worker stopping while running", attemptCause: context.Canceled, cause: context.Canceled, want: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := attemptErr(cmd, tc.returned, tc.err, tc.attemptCause, tc.cause)
			switch {
			case tc.wantNil:
				require.NoError(t, got)
			case tc.want != nil:
				require.ErrorIs(t, got, tc.want)
			default:
				require.ErrorIs(t, got, fsm.ErrTimeout)
				require.ErrorContains(t, got, "attempt_timeout (2s)")
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	fixed := protocol.RetryPolicy{Mode: protocol.RetryFixed, MaxRetries: 2, BaseDelay: int64(time.Second)}
	expo := protocol.RetryPolicy{Mode: protocol.RetryExponential, MaxRetries: 5, BaseDelay: int64(100 * time.Millisecond),
		Multiplier: 2, Jitter: 0.5}
	none := protocol.RetryPolicy{Mode: protocol.RetryNone}
	for _, tc := range []struct {
		name      string
		out       outcome
		attempt   int
		policy    protocol.RetryPolicy
		cancelled bool
		stopping  bool
		u         float64
		want      verdict
		wantDelay time.Duration
		permitOK  bool
		wantErr   func(t *testing.T, err error)
	}{
		{name: "success finishes", attempt: 1, policy: fixed, want: verdictFinish, permitOK: true,
			wantErr: func(t *testing.T, err error) { require.NoError(t, err) }},
		{name: "failure retries after the fixed delay", out: outcome{err: boom}, attempt: 1, policy: fixed,
			want: verdictRetry, wantDelay: time.Second,
			wantErr: func(t *testing.T, err error) { require.Same(t, boom, err) }},
		{name: "exponential delay grows with the attempt", out: outcome{err: boom}, attempt: 3, policy: expo,
			want: verdictRetry, wantDelay: 400 * time.Millisecond},
		{name: "jitter moves the delay", out: outcome{err: boom}, attempt: 3, policy: expo, u: 1,
			want: verdictRetry, wantDelay: 600 * time.Millisecond},
		{name: "negative jitter shortens it", out: outcome{err: boom}, attempt: 3, policy: expo, u: -1,
			want: verdictRetry, wantDelay: 200 * time.Millisecond},
		{name: "last attempt is exhausted", out: outcome{err: boom}, attempt: 3, policy: fixed, want: verdictFinish,
			wantErr: func(t *testing.T, err error) {
				var ex *fsm.RetryExhaustedError
				require.ErrorAs(t, err, &ex)
				require.EqualValues(t, 3, ex.Attempts)
				require.ErrorIs(t, err, boom)
			}},
		{name: "a single attempt is not wrapped", out: outcome{err: boom}, attempt: 1, policy: none, want: verdictFinish,
			wantErr: func(t *testing.T, err error) { require.Same(t, boom, err) }},
		{name: "permanent is final at once", out: outcome{err: fsm.Permanent(boom)}, attempt: 1, policy: fixed, want: verdictFinish,
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, fsm.ErrPermanent)
				require.NotErrorAs(t, err, new(*fsm.RetryExhaustedError))
			}},
		{name: "a panic is final and keeps its error", out: outcome{err: boom, final: true}, attempt: 1, policy: fixed,
			want: verdictFinish, wantErr: func(t *testing.T, err error) { require.Same(t, boom, err) }},
		{name: "a breaker rejection is final", out: outcome{err: circuitOpen{boom}}, attempt: 1, policy: fixed, want: verdictFinish,
			wantErr: func(t *testing.T, err error) { require.ErrorIs(t, err, fsm.ErrCircuitOpen) }},
		{name: "cancel notice drops the result", out: outcome{err: errCancelledByRun}, attempt: 1, policy: fixed,
			cancelled: true, want: verdictDrop},
		{name: "cancel notice after success still drops", attempt: 1, policy: fixed, cancelled: true, want: verdictDrop, permitOK: true},
		{name: "cancel wins over stopping", out: outcome{err: boom}, attempt: 1, policy: fixed, cancelled: true, stopping: true,
			want: verdictDrop},
		{name: "stopping hands the command back", out: outcome{err: context.Canceled}, attempt: 1, policy: fixed, stopping: true,
			want: verdictHandBack},
		{name: "stopping hands back even a success", attempt: 1, policy: fixed, stopping: true, want: verdictHandBack, permitOK: true},
		{name: "stopping hands back the last attempt", out: outcome{err: boom}, attempt: 3, policy: fixed, stopping: true,
			want: verdictHandBack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := int(fixedOr(tc.policy))
			d := decide(tc.out, tc.attempt, max, tc.policy, tc.cancelled, tc.stopping, tc.u)
			require.Equal(t, tc.want, d.verdict)
			require.Equal(t, tc.permitOK, breakerOK(tc.out), "breaker report")
			require.Equal(t, tc.wantDelay, d.delay)
			if tc.wantErr != nil {
				tc.wantErr(t, d.err)
			}
		})
	}
}

// fixedOr is the policy's attempts (engine.MaxAttempts, restated so the
// table reads on its own).
func fixedOr(p protocol.RetryPolicy) uint32 {
	if p.Mode == protocol.RetryNone {
		return 1
	}
	return p.MaxRetries + 1
}

func TestTaskResult(t *testing.T) {
	t.Parallel()
	start := time.Unix(100, 0)
	single := &protocol.TaskCommand{RunID: "r1", Step: 4, Branch: -1}
	branch := &protocol.TaskCommand{RunID: "r1", Step: 4, Branch: 2}
	for _, tc := range []struct {
		name       string
		cmd        *protocol.TaskCommand
		f          finishing
		maxPayload int
		check      func(t *testing.T, r *protocol.TaskResult)
	}{
		{name: "success", cmd: single, f: finishing{attempts: 2, res: fsm.NextWith("b", 7), storeUsed: true,
			ran: attemptSpan{start: start, took: time.Second}}, check: func(t *testing.T, r *protocol.TaskResult) {
			require.Equal(t, protocol.ResultOK, r.Status)
			require.Equal(t, "b", r.Next)
			require.NotEmpty(t, r.Output)
			require.EqualValues(t, 2, r.Attempts)
			require.True(t, r.StoreUsed)
			require.Equal(t, start.UnixNano(), r.AttemptStarted)
			require.Equal(t, int64(time.Second), r.AttemptDuration)
			require.Equal(t, "w1", r.Worker)
			require.Equal(t, int32(-1), r.Branch)
		}},
		{name: "no attempt ran: no span", cmd: single, f: finishing{attempts: 1, err: fsm.Permanent(errors.New("no such kind"))},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.ResultFailed, r.Status)
				require.Zero(t, r.AttemptStarted)
				require.Zero(t, r.AttemptDuration)
			}},
		{name: "no next state fails", cmd: single, f: finishing{attempts: 1, res: fsm.Result{}},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.ResultFailed, r.Status)
				require.Equal(t, protocol.CategoryTaskExecution, r.Error.Category)
				require.Contains(t, r.Error.Message, "no next state")
			}},
		{name: "a branch needs no next state", cmd: branch, f: finishing{attempts: 1, res: fsm.Result{}},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.ResultOK, r.Status)
				require.Equal(t, int32(2), r.Branch)
			}},
		{name: "output that cannot be encoded fails", cmd: single, f: finishing{attempts: 1, res: fsm.NextWith("b", make(chan int))},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.ResultFailed, r.Status)
				require.Contains(t, r.Error.Message, "encode output")
				require.Empty(t, r.Next)
				require.Nil(t, r.Output)
			}},
		{name: "a failure clears next and output", cmd: single, f: finishing{attempts: 3, res: fsm.NextWith("b", 1), err: errors.New("boom")},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.ResultFailed, r.Status)
				require.Empty(t, r.Next)
				require.Nil(t, r.Output)
				require.Contains(t, r.Error.Message, "boom")
			}},
		{name: "breaker rejection keeps its category", cmd: single, f: finishing{attempts: 1, err: circuitOpen{errors.New("open")}},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.CategoryCircuitOpen, r.Error.Category)
				require.Equal(t, "circuit_open: open", r.Error.Message)
			}},
		{name: "a dynamic split", cmd: single, f: finishing{attempts: 1,
			res: fsm.SplitInto(fsm.JoinConfig[string]{JoinState: "j"}, splitTask{1}, splitTask{2})},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.ResultOK, r.Status)
				require.NotNil(t, r.Split)
				require.Equal(t, 2, r.Split.Len())
				if r.Split.Common != nil {
					require.EqualValues(t, protocol.SchemaVersion2, r.V, "a compacted split needs schema 2")
				}
			}},
		{name: "a dynamic split past the maximum fails", cmd: single, maxPayload: 64 << 20, f: finishing{attempts: 1,
			res: fsm.SplitInto(fsm.JoinConfig[string]{JoinState: "j"}, manySplitTasks(engine.MaxDynamicBranchesDefault+1)...)},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.ResultFailed, r.Status)
				require.Equal(t, protocol.CategoryConfiguration, r.Error.Category)
				require.Contains(t, r.Error.Message, "exceeds the maximum")
				require.Nil(t, r.Split)
			}},
		{name: "too large for the payload limit fails", cmd: single, maxPayload: 512,
			f: finishing{attempts: 1, res: fsm.NextWith("b", strings.Repeat("x", 1024))},
			check: func(t *testing.T, r *protocol.TaskResult) {
				require.Equal(t, protocol.ResultFailed, r.Status)
				require.Contains(t, r.Error.Message, "exceeds the maximum payload of 512 bytes")
				require.Nil(t, r.Output)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.maxPayload
			if limit == 0 {
				limit = 1 << 20
			}
			r, data, err := taskResult(tc.cmd, &tc.f, "w1", limit)
			require.NoError(t, err)
			require.LessOrEqual(t, len(data), limit)
			var back protocol.TaskResult
			require.NoError(t, wirecodec.Decode(data, &back, 0))
			require.Equal(t, r.Status, back.Status, "data is r encoded")
			tc.check(t, r)
		})
	}
}

func TestBranchOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		r      protocol.TaskResult
		branch int32
		want   protocol.BranchStatus
	}{
		{"single task: none", protocol.TaskResult{Status: protocol.ResultOK}, -1, ""},
		{"succeeded", protocol.TaskResult{Status: protocol.ResultOK, Output: []byte{0xc0}}, 1, protocol.BranchSucceeded},
		{"failed", protocol.TaskResult{Status: protocol.ResultFailed,
			Error: &protocol.ErrorInfo{Category: protocol.CategoryTaskExecution}}, 1, protocol.BranchFailed},
		{"timed out", protocol.TaskResult{Status: protocol.ResultFailed,
			Error: &protocol.ErrorInfo{Category: protocol.CategoryTimeout}}, 1, protocol.BranchTimedOut},
		{"exhausted by timeouts", protocol.TaskResult{Status: protocol.ResultFailed,
			Error: &protocol.ErrorInfo{Category: protocol.CategoryRetryExhausted,
				Cause: &protocol.ErrorInfo{Category: protocol.CategoryTimeout}}}, 1, protocol.BranchTimedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := branchOutcome(&protocol.TaskCommand{Branch: tc.branch}, &tc.r)
			require.NoError(t, err)
			if tc.want == "" {
				require.Nil(t, data)
				return
			}
			var bo protocol.BranchOutcome
			require.NoError(t, wirecodec.Decode(data, &bo, 0))
			require.Equal(t, tc.want, bo.Status)
			require.Equal(t, tc.branch, bo.Index)
			require.Equal(t, tc.r.Output, []byte(bo.Output))
			require.Equal(t, tc.r.Error, bo.Error)
		})
	}
}

// BenchmarkDecide: the per-attempt decision allocates nothing on the
// success and retry paths.
func BenchmarkDecide(b *testing.B) {
	policy := protocol.RetryPolicy{Mode: protocol.RetryExponential, MaxRetries: 5, BaseDelay: int64(time.Millisecond), Multiplier: 2}
	boom := errors.New("boom")
	cmd := &protocol.TaskCommand{Branch: -1}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if admit(cmd, 1, 6, false, now) != admitRun {
			b.Fatal("not admitted")
		}
		out := outcome{}
		if i%2 == 1 {
			out.err = boom
		}
		if d := decide(out, 1, 6, policy, false, false, 0); d.verdict == verdictDrop {
			b.Fatal("dropped")
		}
	}
}

type splitTask struct {
	N int `msgpack:"n"`
}

func (splitTask) Kind() string { return "split_task" }
func (splitTask) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Result{}, nil
}

func manySplitTasks(n int) []fsm.Task {
	out := make([]fsm.Task, n)
	for i := range out {
		out[i] = splitTask{i}
	}
	return out
}

func TestRetryDetail(t *testing.T) {
	t.Parallel()
	single := &protocol.TaskCommand{Branch: -1, Task: protocol.TaskSpec{Kind: "charge"}}
	branch := &protocol.TaskCommand{Branch: 2, Task: protocol.TaskSpec{Kind: "fetch_source"}}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		cmd   *protocol.TaskCommand
		delay time.Duration
		want  string
	}{
		{"single task, delay rounded to the millisecond", single, 188002601 * time.Nanosecond, "attempt 1 failed, next in 188ms: boom"},
		{"a split branch is named with its kind", branch, 2 * time.Second, "branch 2 (fetch_source): attempt 1 failed, next in 2s: boom"},
		{"under a millisecond is kept", single, 300 * time.Microsecond, "attempt 1 failed, next in 300µs: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, retryDetail(tc.cmd, 1, tc.delay, boom))
		})
	}
}
