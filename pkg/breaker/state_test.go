package breaker

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	testPolicy = Policy{FailureThreshold: 3, ResetTimeout: 10 * time.Second, HalfOpenMaxCalls: 2}
	t0         = time.Unix(1_000_000, 0)
)

func TestStates(t *testing.T) {
	t.Parallel()
	s := States()
	require.Equal(t, []State{StateClosed, StateOpen, StateHalfOpen}, s)
	s[0] = "mutated"
	require.Equal(t, StateClosed, States()[0], "States returns a fresh slice")
	require.Equal(t, "half_open", StateHalfOpen.String())
}

func TestAcquire(t *testing.T) {
	t.Parallel()
	open := Snapshot{State: StateOpen, ConsecutiveFailures: 3, OpenUntil: t0.Add(10 * time.Second), Epoch: 4}
	tests := []struct {
		name      string
		in        Snapshot
		now       time.Time
		want      Snapshot
		wantWrite bool
		wantT     ticket
		wantErr   error
	}{
		{
			name:  "zero snapshot is closed and admits",
			in:    Snapshot{},
			now:   t0,
			want:  Snapshot{},
			wantT: ticket{epoch: 0},
		},
		{
			name:  "closed admits without a write",
			in:    Snapshot{State: StateClosed, ConsecutiveFailures: 2, Epoch: 7},
			now:   t0,
			want:  Snapshot{State: StateClosed, ConsecutiveFailures: 2, Epoch: 7},
			wantT: ticket{epoch: 7},
		},
		{
			name:    "open before the deadline rejects",
			in:      open,
			now:     t0.Add(10*time.Second - time.Nanosecond),
			want:    open,
			wantErr: ErrOpen,
		},
		{
			name: "open at the deadline turns half-open and admits the first probe",
			in:   open,
			now:  t0.Add(10 * time.Second),
			want: Snapshot{
				State: StateHalfOpen, ConsecutiveFailures: 3, HalfOpenInFlight: 1, Epoch: 5,
				UpdatedAt: t0.Add(10 * time.Second),
			},
			wantWrite: true,
			wantT:     ticket{epoch: 5, halfOpen: true},
		},
		{
			name: "open after the deadline turns half-open",
			in:   open,
			now:  t0.Add(time.Hour),
			want: Snapshot{
				State: StateHalfOpen, ConsecutiveFailures: 3, HalfOpenInFlight: 1, Epoch: 5,
				UpdatedAt: t0.Add(time.Hour),
			},
			wantWrite: true,
			wantT:     ticket{epoch: 5, halfOpen: true},
		},
		{
			name:      "half-open with a free slot admits another probe",
			in:        Snapshot{State: StateHalfOpen, HalfOpenInFlight: 1, Epoch: 5},
			now:       t0,
			want:      Snapshot{State: StateHalfOpen, HalfOpenInFlight: 2, Epoch: 5, UpdatedAt: t0},
			wantWrite: true,
			wantT:     ticket{epoch: 5, halfOpen: true},
		},
		{
			name:      "half-open counts slots, not successes: a freed slot admits",
			in:        Snapshot{State: StateHalfOpen, HalfOpenInFlight: 0, HalfOpenSuccesses: 1, Epoch: 5},
			now:       t0,
			want:      Snapshot{State: StateHalfOpen, HalfOpenInFlight: 1, HalfOpenSuccesses: 1, Epoch: 5, UpdatedAt: t0},
			wantWrite: true,
			wantT:     ticket{epoch: 5, halfOpen: true},
		},
		{
			name:    "half-open with every slot taken rejects",
			in:      Snapshot{State: StateHalfOpen, HalfOpenInFlight: 2, Epoch: 5},
			now:     t0,
			want:    Snapshot{State: StateHalfOpen, HalfOpenInFlight: 2, Epoch: 5},
			wantErr: ErrHalfOpenExhausted,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, write, tk, err := tc.in.acquire(testPolicy, tc.now)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.ErrorIs(t, err, ErrOpen, "every rejection is ErrOpen")
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantWrite, write)
			require.Equal(t, tc.wantT, tk)
		})
	}
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	closed := func(failures int) Snapshot {
		return Snapshot{State: StateClosed, ConsecutiveFailures: failures, Epoch: 4}
	}
	half := func(inFlight, successes int) Snapshot {
		return Snapshot{State: StateHalfOpen, ConsecutiveFailures: 3, HalfOpenInFlight: inFlight, HalfOpenSuccesses: successes, Epoch: 5}
	}
	now := t0.Add(time.Minute)
	openUntil := now.Add(10 * time.Second)
	tests := []struct {
		name      string
		in        Snapshot
		t         ticket
		success   bool
		want      Snapshot
		wantWrite bool
	}{
		// Closed.
		{
			name: "closed success with no failures writes nothing",
			in:   closed(0), t: ticket{epoch: 4}, success: true,
			want: closed(0),
		},
		{
			name: "closed success resets the failure count",
			in:   closed(2), t: ticket{epoch: 4}, success: true,
			want:      Snapshot{State: StateClosed, Epoch: 4, UpdatedAt: now},
			wantWrite: true,
		},
		{
			name: "closed failure below the threshold counts",
			in:   closed(1), t: ticket{epoch: 4},
			want:      Snapshot{State: StateClosed, ConsecutiveFailures: 2, Epoch: 4, UpdatedAt: now},
			wantWrite: true,
		},
		{
			name: "closed failure reaching the threshold trips open",
			in:   closed(2), t: ticket{epoch: 4},
			want:      Snapshot{State: StateOpen, ConsecutiveFailures: 3, OpenUntil: openUntil, Epoch: 5, UpdatedAt: now},
			wantWrite: true,
		},
		// Half-open.
		{
			name: "half-open probe success below the close threshold counts and frees its slot",
			in:   half(2, 0), t: ticket{epoch: 5, halfOpen: true}, success: true,
			want:      Snapshot{State: StateHalfOpen, ConsecutiveFailures: 3, HalfOpenInFlight: 1, HalfOpenSuccesses: 1, Epoch: 5, UpdatedAt: now},
			wantWrite: true,
		},
		{
			name: "half-open probe success reaching HalfOpenMaxCalls closes",
			in:   half(1, 1), t: ticket{epoch: 5, halfOpen: true}, success: true,
			want:      Snapshot{State: StateClosed, Epoch: 6, UpdatedAt: now},
			wantWrite: true,
		},
		{
			name: "half-open probe failure re-opens with a fresh deadline",
			in:   half(2, 1), t: ticket{epoch: 5, halfOpen: true},
			want:      Snapshot{State: StateOpen, ConsecutiveFailures: 3, OpenUntil: openUntil, Epoch: 6, UpdatedAt: now},
			wantWrite: true,
		},
		// Stale epochs.
		{
			name: "stale success in half-open is ignored",
			in:   half(1, 0), t: ticket{epoch: 4}, success: true,
			want: half(1, 0),
		},
		{
			name: "stale failure in half-open is ignored",
			in:   half(1, 0), t: ticket{epoch: 4},
			want: half(1, 0),
		},
		{
			name: "stale failure in closed is ignored",
			in:   closed(2), t: ticket{epoch: 3},
			want: closed(2),
		},
		{
			name: "stale success in closed is ignored",
			in:   closed(2), t: ticket{epoch: 3}, success: true,
			want: closed(2),
		},
		// Open with the current epoch cannot happen; it changes nothing.
		{
			name: "open ignores a current-epoch success",
			in:   Snapshot{State: StateOpen, Epoch: 5}, t: ticket{epoch: 5}, success: true,
			want: Snapshot{State: StateOpen, Epoch: 5},
		},
		{
			name: "open ignores a current-epoch failure",
			in:   Snapshot{State: StateOpen, Epoch: 5}, t: ticket{epoch: 5},
			want: Snapshot{State: StateOpen, Epoch: 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got Snapshot
			var write bool
			if tc.success {
				got, write = tc.in.success(testPolicy, tc.t, now)
			} else {
				got, write = tc.in.failure(testPolicy, tc.t, now)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantWrite, write)
		})
	}
}

// TestLifecycle walks the pure functions through cano's round trip:
// trip, failed probe, successful probes, closed again.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	p := testPolicy
	var s Snapshot
	now := t0
	fail := func() {
		t.Helper()
		next, _, tk, err := s.acquire(p, now)
		require.NoError(t, err)
		s, _ = next.failure(p, tk, now)
	}
	for range 3 {
		fail()
	}
	require.Equal(t, StateOpen, s.State)
	require.Equal(t, uint64(1), s.Epoch)

	now = now.Add(p.ResetTimeout)
	fail() // probe fails
	require.Equal(t, StateOpen, s.State)
	require.Equal(t, uint64(3), s.Epoch, "open→half-open→open")
	require.Equal(t, now.Add(p.ResetTimeout), s.OpenUntil, "fresh deadline")

	now = now.Add(p.ResetTimeout)
	s1, _, tk1, err := s.acquire(p, now)
	require.NoError(t, err)
	s2, _, tk2, err := s1.acquire(p, now)
	require.NoError(t, err)
	_, _, _, err = s2.acquire(p, now)
	require.True(t, errors.Is(err, ErrHalfOpenExhausted))
	s3, _ := s2.success(p, tk1, now)
	require.Equal(t, StateHalfOpen, s3.State)
	s4, _ := s3.success(p, tk2, now)
	require.Equal(t, StateClosed, s4.State)
	require.Equal(t, uint64(5), s4.Epoch)
}

func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        Settings
		wantField string // "" means valid
	}{
		{name: "zero value is valid", in: Settings{}},
		{name: "explicit values", in: Settings{Policy: Policy{FailureThreshold: 1, ResetTimeout: time.Millisecond, HalfOpenMaxCalls: halfOpenMaxCallsMax}}},
		{name: "negative threshold", in: Settings{Policy: Policy{FailureThreshold: -1}}, wantField: "FailureThreshold"},
		{name: "threshold too large", in: Settings{Policy: Policy{FailureThreshold: failureThresholdMax + 1}}, wantField: "FailureThreshold"},
		{name: "negative reset timeout", in: Settings{Policy: Policy{ResetTimeout: -time.Second}}, wantField: "ResetTimeout"},
		{name: "negative half-open calls", in: Settings{Policy: Policy{HalfOpenMaxCalls: -1}}, wantField: "HalfOpenMaxCalls"},
		{name: "half-open calls above u32::MAX/2", in: Settings{Policy: Policy{HalfOpenMaxCalls: halfOpenMaxCallsMax + 1}}, wantField: "HalfOpenMaxCalls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New("x", NewLocalStore(), tc.in)
			if tc.wantField == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidSettings)
			require.ErrorContains(t, err, tc.wantField)
		})
	}
}

func TestSettingsDefaults(t *testing.T) {
	t.Parallel()
	b, err := New("x", NewLocalStore(), Settings{})
	require.NoError(t, err)
	require.Equal(t, Policy{FailureThreshold: 5, ResetTimeout: 30 * time.Second, HalfOpenMaxCalls: 1}, b.Policy())

	_, err = New("", NewLocalStore(), Settings{})
	require.ErrorIs(t, err, ErrInvalidSettings)
	_, err = New("x", nil, Settings{})
	require.ErrorIs(t, err, ErrInvalidSettings)
}
