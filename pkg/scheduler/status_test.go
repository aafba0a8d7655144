package scheduler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/protocol"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	def := BackoffPolicy{}
	tests := []struct {
		name   string
		p      BackoffPolicy
		streak uint32
		r      float64
		want   time.Duration
	}{
		{"default first", def, 1, 0.5, time.Second},
		{"default second", def, 2, 0.5, 2 * time.Second},
		{"default fifth", def, 5, 0.5, 16 * time.Second},
		{"default capped", def, 20, 0.5, 5 * time.Minute},
		{"huge streak capped", def, 5000, 0.5, 5 * time.Minute},
		{"streak zero as one", def, 0, 0.5, time.Second},
		{"jitter low", def, 1, 0, 900 * time.Millisecond},
		{"jitter high capped", BackoffPolicy{MaxDelay: time.Second}, 1, 0.9999999, time.Second},
		{"jitter high", def, 1, 0.75, 1050 * time.Millisecond},
		{"no jitter", BackoffPolicy{Jitter: -1}, 3, 0, 4 * time.Second},
		{"custom", BackoffPolicy{Initial: 100 * time.Millisecond, Multiplier: 3, MaxDelay: time.Second, Jitter: -1}, 3, 0.1, 900 * time.Millisecond},
		{"custom capped", BackoffPolicy{Initial: 100 * time.Millisecond, Multiplier: 3, MaxDelay: time.Second, Jitter: -1}, 4, 0.1, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, float64(tc.want), float64(tc.p.Delay(tc.streak, tc.r)), float64(time.Microsecond))
		})
	}
}

func TestBackoffValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    BackoffPolicy
		ok   bool
	}{
		{"zero", BackoffPolicy{}, true},
		{"no jitter", BackoffPolicy{Jitter: -1}, true},
		{"negative initial", BackoffPolicy{Initial: -1}, false},
		{"negative max", BackoffPolicy{MaxDelay: -1}, false},
		{"shrinking", BackoffPolicy{Multiplier: 0.5}, false},
		{"jitter too big", BackoffPolicy{Jitter: 1.5}, false},
		{"jitter negative", BackoffPolicy{Jitter: -0.5}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.p.validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	slot := time.Unix(1000, 0)
	st := func(phase protocol.FlowPhase, mod func(*protocol.FlowStatus)) protocol.FlowStatus {
		s := newStatus("f")
		s.Phase = phase
		if mod != nil {
			mod(&s)
		}
		return s
	}
	backoffUntil := func(s *protocol.FlowStatus) { s.NextEligible = now.Add(time.Minute).UnixNano() }
	tests := []struct {
		name    string
		st      protocol.FlowStatus
		kind    fireKind
		want    decision
		skipped uint64
	}{
		{"cron idle fires", st(protocol.FlowIdle, nil), fireCron, decideFire, 0},
		{"cron completed fires", st(protocol.FlowCompleted, nil), fireCron, decideFire, 0},
		{"cron running skips", st(protocol.FlowRunning, nil), fireCron, decideSkip, 1},
		{"cron tripped skips", st(protocol.FlowTripped, nil), fireCron, decideSkip, 1},
		{"cron in backoff skips", st(protocol.FlowBackoff, backoffUntil), fireCron, decideSkip, 1},
		{"cron after backoff fires", st(protocol.FlowBackoff, func(s *protocol.FlowStatus) { s.NextEligible = now.UnixNano() }), fireCron, decideFire, 0},
		{"cron slot already handled", st(protocol.FlowIdle, func(s *protocol.FlowStatus) { s.LastSlot = slot.UnixNano() }), fireCron, decideNoop, 0},
		{"every due fires", st(protocol.FlowCompleted, nil), fireEvery, decideFire, 0},
		{"every running noop", st(protocol.FlowRunning, nil), fireEvery, decideNoop, 0},
		{"every not due noop", st(protocol.FlowBackoff, backoffUntil), fireEvery, decideNoop, 0},
		{"manual bypasses backoff", st(protocol.FlowBackoff, backoffUntil), fireManual, decideFire, 0},
		{"manual not a trip", st(protocol.FlowTripped, nil), fireManual, decideRejectTrips, 0},
		{"manual running rejected", st(protocol.FlowRunning, nil), fireManual, decideRejectBusy, 0},
		{"manual already reserved", st(protocol.FlowRunning, func(s *protocol.FlowStatus) { s.CurrentRun = "run" }), fireManual, decideNoop, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, d := reserve(tc.st, tc.kind, slot, "run", now)
			require.Equal(t, tc.want, d, d.String())
			require.Equal(t, tc.skipped, got.SkippedFires)
			if d == decideFire {
				require.Equal(t, protocol.FlowRunning, got.Phase)
				require.Equal(t, tc.st.RunCount+1, got.RunCount)
				require.Equal(t, now.UnixNano(), got.LastRun)
				require.Equal(t, "run", got.CurrentRun)
			}
			if tc.kind == fireCron && d != decideNoop {
				require.Equal(t, slot.UnixNano(), got.LastSlot)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	running := func(streak uint32) protocol.FlowStatus {
		s := newStatus("f")
		s.Phase, s.CurrentRun, s.FailureStreak, s.RunCount = protocol.FlowRunning, "run", streak, 3
		return s
	}
	trip3 := BackoffPolicy{Jitter: -1, StreakLimit: 3}
	tests := []struct {
		name       string
		st         protocol.FlowStatus
		run        string
		out        outcome
		bp         BackoffPolicy
		every      time.Duration
		ok         bool
		phase      protocol.FlowPhase
		streak     uint32
		nextElig   time.Duration // from now; -1 means zero
		lastErrSet bool
	}{
		{"success resets streak", running(2), "run", outcomeCompleted, trip3, 0, true, protocol.FlowCompleted, 0, -1, false},
		{"first failure backs off 1s", running(0), "run", outcomeFailed, trip3, 0, true, protocol.FlowBackoff, 1, time.Second, true},
		{"second failure backs off 2s", running(1), "run", outcomeFailed, trip3, 0, true, protocol.FlowBackoff, 2, 2 * time.Second, true},
		{"streak limit trips", running(2), "run", outcomeFailed, trip3, 0, true, protocol.FlowTripped, 3, -1, true},
		{"no limit never trips", running(50), "run", outcomeFailed, BackoffPolicy{Jitter: -1}, 0, true, protocol.FlowBackoff, 51, 5 * time.Minute, true},
		{"cancel is not a failure", running(2), "run", outcomeCancelled, trip3, 0, true, protocol.FlowIdle, 2, -1, false},
		{"every waits interval after success", running(0), "run", outcomeCompleted, trip3, time.Minute, true, protocol.FlowCompleted, 0, time.Minute, false},
		{"every waits max(interval, backoff)", running(0), "run", outcomeFailed, trip3, 10 * time.Minute, true, protocol.FlowBackoff, 1, 10 * time.Minute, true},
		{"every backoff longer than interval", running(0), "run", outcomeFailed, trip3, time.Millisecond, true, protocol.FlowBackoff, 1, time.Second, true},
		{"no jitter stays none", running(2), "run", outcomeFailed, BackoffPolicy{Jitter: -1}, 0, true, protocol.FlowBackoff, 3, 4 * time.Second, true},
		{"foreign run ignored", running(0), "other", outcomeFailed, trip3, 0, false, protocol.FlowRunning, 0, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := finish(tc.st, tc.run, tc.out, "boom", tc.bp, tc.every, now, 0.9) // 0.9: +8% if jitter applied
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.phase, got.Phase)
			require.Equal(t, tc.streak, got.FailureStreak)
			if tc.nextElig < 0 {
				require.Zero(t, got.NextEligible)
			} else {
				require.Equal(t, now.Add(tc.nextElig).UnixNano(), got.NextEligible)
			}
			require.Equal(t, tc.lastErrSet, got.LastError == "boom")
			if ok {
				require.Empty(t, got.CurrentRun)
				require.Equal(t, tc.st.RunCount, got.RunCount)
			}
		})
	}
}

func TestReset(t *testing.T) {
	t.Parallel()
	for _, phase := range []protocol.FlowPhase{protocol.FlowBackoff, protocol.FlowTripped, protocol.FlowRunning} {
		s := newStatus("f")
		s.Phase, s.FailureStreak, s.NextEligible, s.LastError = phase, 3, 99, "e"
		got := reset(s)
		require.Zero(t, got.FailureStreak)
		require.Zero(t, got.NextEligible)
		want := protocol.FlowIdle
		if phase == protocol.FlowRunning {
			want = protocol.FlowRunning
		}
		require.Equal(t, want, got.Phase)
	}
}

func TestPauseResumeReserve(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000, 0)
	ns := func(t time.Time) int64 { return t.UnixNano() }
	paused := protocol.FlowStatus{ID: "f", Phase: protocol.FlowIdle, PausedAt: ns(now.Add(-time.Minute))}
	resumed := protocol.FlowStatus{ID: "f", Phase: protocol.FlowIdle, ResumedAt: ns(now)}
	tests := []struct {
		name string
		st   protocol.FlowStatus
		k    fireKind
		slot time.Time
		want decision
	}{
		{"paused cron slot not taken", paused, fireCron, now, decideNoop},
		{"paused every not taken", paused, fireEvery, now, decideNoop},
		{"paused manual trigger runs", paused, fireManual, now, decideFire},
		{"slot missed while paused not caught up", resumed, fireCron, now.Add(-time.Second), decideNoop},
		{"slot at resume time not fired", resumed, fireCron, now, decideNoop},
		{"slot after resume fires", resumed, fireCron, now.Add(time.Second), decideFire},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, dec := reserve(tc.st, tc.k, tc.slot, "run", now)
			require.Equal(t, tc.want, dec)
			if dec == decideNoop {
				require.Equal(t, tc.st, got, "a noop writes nothing")
			}
			require.Equal(t, tc.st.PausedAt, got.PausedAt, "a fire keeps the pause")
		})
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000, 0)
	sec := int64(time.Second)
	n := now.UnixNano()
	tests := []struct {
		name      string
		st        protocol.FlowStatus
		every     time.Duration
		wantWrite bool
		wantNext  int64
	}{
		{"not paused: nothing", protocol.FlowStatus{NextEligible: n - sec}, 10 * time.Second, false, n - sec},
		{"cron: next eligible kept", protocol.FlowStatus{PausedAt: 1, NextEligible: n - sec}, 0, true, n - sec},
		{"every not yet due: kept", protocol.FlowStatus{PausedAt: 1, NextEligible: n + sec}, 10 * time.Second, true, n + sec},
		{"every one slot missed: next on grid", protocol.FlowStatus{PausedAt: 1, NextEligible: n - sec}, 10 * time.Second, true, n + 9*sec},
		{"every many slots missed: next on grid", protocol.FlowStatus{PausedAt: 1, NextEligible: n - 95*sec}, 10 * time.Second, true, n + 5*sec},
		{"every due exactly now: next slot", protocol.FlowStatus{PausedAt: 1, NextEligible: n}, 10 * time.Second, true, n + 10*sec},
		{"every never ran: at once", protocol.FlowStatus{PausedAt: 1}, 10 * time.Second, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, write := resume(tc.st, tc.every, now)
			require.Equal(t, tc.wantWrite, write)
			require.Equal(t, tc.wantNext, got.NextEligible)
			require.Zero(t, got.PausedAt)
			if write {
				require.Equal(t, n, got.ResumedAt)
			}
		})
	}
	st, write := pause(protocol.FlowStatus{Phase: protocol.FlowRunning}, now)
	require.True(t, write)
	require.Equal(t, n, st.PausedAt)
	require.Equal(t, protocol.FlowRunning, st.Phase, "a run in progress goes on")
	_, write = pause(st, now.Add(time.Second))
	require.False(t, write, "pausing a paused flow writes nothing")
	require.Equal(t, n, reset(st).PausedAt, "reset keeps the pause")
}
