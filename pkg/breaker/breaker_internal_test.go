package breaker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scriptStore answers Load with load (or loadErr) and runs Update's
// function on cur (or fails with updErr): the local copy and the stored
// state can disagree, as they do for a breaker shared by several processes.
type scriptStore struct {
	load    Snapshot
	loadErr error
	cur     Snapshot
	updErr  error
}

func (s *scriptStore) Load(context.Context, string) (Snapshot, error) { return s.load, s.loadErr }

func (s *scriptStore) Update(_ context.Context, _ string, fn UpdateFunc) (Snapshot, error) {
	if s.updErr != nil {
		return Snapshot{}, s.updErr
	}
	next, write, err := fn(s.cur)
	if err != nil {
		return s.cur, err
	}
	if write {
		s.cur = next
	}
	return s.cur, nil
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// The breaker's error paths: store failures are wrapped with the breaker's
// name and what it was doing; a local copy that lags the store gives the
// store's answer.
func TestBreakerStoreErrors(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	boom := errors.New("boom")
	openPast := Snapshot{State: StateOpen, OpenUntil: now.Add(-time.Second), Epoch: 4}
	for _, tc := range []struct {
		name    string
		store   *scriptStore
		wantIs  error
		wantMsg string
	}{
		{"load fails", &scriptStore{loadErr: boom}, boom, "breaker: db: load: boom"},
		{"update of a breaker due a probe fails", &scriptStore{load: openPast, cur: openPast, updErr: boom}, boom,
			"breaker: db: acquire: boom"},
		{"another process re-opened it", &scriptStore{load: openPast,
			cur: Snapshot{State: StateOpen, OpenUntil: now.Add(time.Minute), Epoch: 6}}, ErrOpen,
			`(breaker "db", open until 2023-11-14T22:14:20Z)`},
		{"another process took the last trial slot", &scriptStore{load: openPast,
			cur: Snapshot{State: StateHalfOpen, HalfOpenInFlight: 1, Epoch: 5}}, ErrHalfOpenExhausted,
			`(breaker "db")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New("db", tc.store, Settings{Clock: fixedClock(now)})
			require.NoError(t, err)
			require.Equal(t, "db", b.Name())
			p, err := b.Acquire(context.Background())
			require.Nil(t, p)
			require.ErrorIs(t, err, tc.wantIs)
			require.ErrorContains(t, err, tc.wantMsg)
		})
	}

	b, err := New("db", &scriptStore{loadErr: boom}, Settings{})
	require.NoError(t, err)
	_, err = b.Snapshot(context.Background())
	require.EqualError(t, err, "breaker: db: load: boom")
}

func TestPermitStoreErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	st := &scriptStore{}
	b, err := New("db", st, Settings{Policy: Policy{FailureThreshold: 1}})
	require.NoError(t, err)
	acquire := func() *Permit {
		p, err := b.Acquire(context.Background())
		require.NoError(t, err)
		return p
	}
	p1, p2, p3 := acquire(), acquire(), acquire()

	st.loadErr = boom
	require.EqualError(t, p1.Failure(context.Background()), "breaker: db: load: boom")
	st.loadErr, st.updErr = nil, boom
	require.EqualError(t, p2.Failure(context.Background()), "breaker: db: record outcome: boom")

	// Without OnTransitionFunc a transition is stored, and nothing else.
	st.updErr = nil
	require.NoError(t, p3.Failure(context.Background()))
	require.Equal(t, StateOpen, st.cur.State)
	require.EqualValues(t, 1, st.cur.Epoch)

	var nilPermit *Permit
	require.Zero(t, nilPermit.Epoch())
	require.False(t, nilPermit.Probe())
}

func TestOpenErrorMessage(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	e := &OpenError{Name: "db", Until: until, err: ErrOpen}
	require.Equal(t, ErrOpen.Error()+` (breaker "db", open until 2026-01-02T02:04:05.000000006Z)`, e.Error(), "in UTC")
	require.ErrorIs(t, e, ErrOpen)
	e = &OpenError{Name: "db", err: ErrHalfOpenExhausted}
	require.Equal(t, ErrHalfOpenExhausted.Error()+` (breaker "db")`, e.Error())
}

func TestSettingsNegativeTimeout(t *testing.T) {
	t.Parallel()
	_, err := New("db", NewLocalStore(), Settings{Timeout: -time.Second})
	require.ErrorIs(t, err, ErrInvalidSettings)
	require.ErrorContains(t, err, "Timeout -1s: must not be negative")
}
