package retry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		attempt int
		r       float64
		want    time.Duration
	}{
		{"first, no jitter", 0, 0.5, 250 * time.Millisecond},
		{"second doubles", 1, 0.5, 500 * time.Millisecond},
		{"fifth", 4, 0.5, 4 * time.Second},
		{"sixth", 5, 0.5, 8 * time.Second},
		{"seventh is capped", 6, 0.5, 10 * time.Second},
		{"huge attempt stays capped", 1000, 0.5, 10 * time.Second},
		{"shift overflow stays capped", 62, 0.5, 10 * time.Second},
		{"negative attempt is the first", -3, 0.5, 250 * time.Millisecond},
		{"jitter low", 0, 0, 200 * time.Millisecond},
		{"jitter high", 0, 1, 300 * time.Millisecond},
		{"jitter clamped below", 2, -5, 800 * time.Millisecond},
		{"jitter clamped above", 6, 7, 12 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, Delay(tc.attempt, tc.r))
		})
	}
}

func TestLoop(t *testing.T) {
	t.Parallel()
	type testBundle struct {
		loop   Loop
		logs   *bytes.Buffer
		slept  []time.Duration
		cancel context.CancelFunc
		ctx    context.Context
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		b := &testBundle{logs: &bytes.Buffer{}}
		b.ctx, b.cancel = context.WithCancel(context.Background())
		t.Cleanup(b.cancel)
		b.loop = Loop{
			Log:  slog.New(slog.NewTextHandler(b.logs, nil)),
			URL:  func() string { return "nats://127.0.0.1:4222" },
			Rand: func() float64 { return 0.5 },
			Sleep: func(ctx context.Context, d time.Duration) error {
				b.slept = append(b.slept, d)
				return ctx.Err()
			},
		}
		return b
	}
	transient := errors.New("nats: stream KV_cano_leader: context deadline exceeded")

	t.Run("retries until the step succeeds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		calls := 0
		err := b.loop.Do(b.ctx, "provision", func(context.Context) error {
			calls++
			if calls < 4 {
				return transient
			}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, 4, calls)
		require.Equal(t, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}, b.slept)
		require.Contains(t, b.logs.String(),
			"waiting for NATS at nats://127.0.0.1:4222: stream KV_cano_leader: context deadline exceeded; retrying in 250ms")
		require.Contains(t, b.logs.String(), `msg="provision: done, after waiting for NATS at nats://127.0.0.1:4222"`)
		require.NotContains(t, b.logs.String(), "s (", "no hint without Loop.Hint")
	})
	t.Run("the hint ends the third failed attempt's line, once", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.loop.Hint = "is a server running?"
		calls := 0
		require.NoError(t, b.loop.Do(b.ctx, "connect", func(context.Context) error {
			calls++
			if calls < 6 {
				return transient
			}
			return nil
		}))
		lines := strings.Split(strings.TrimSpace(b.logs.String()), "\n")
		var hinted []int
		for i, line := range lines {
			if strings.Contains(line, "(is a server running?)") {
				hinted = append(hinted, i)
			}
		}
		require.Equal(t, []int{2}, hinted, "logs:\n%s", b.logs.String())
		require.Contains(t, lines[2], "retrying in 1s (is a server running?)")
	})
	t.Run("a permanent error returns at once", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bad := errors.New("provision: Prefix: invalid")
		err := b.loop.Do(b.ctx, "provision", func(context.Context) error { return Permanent(bad) })
		require.ErrorIs(t, err, bad)
		require.ErrorIs(t, err, ErrPermanent)
		require.Equal(t, "provision: Prefix: invalid", err.Error())
		require.Empty(t, b.slept)
	})
	t.Run("the Permanent classifier stops it", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bad := errors.New("immutable")
		b.loop.Permanent = func(err error) bool { return errors.Is(err, bad) }
		err := b.loop.Do(b.ctx, "provision", func(context.Context) error { return bad })
		require.ErrorIs(t, err, bad)
		require.Empty(t, b.slept)
	})
	t.Run("a cancelled context ends it with the last failure", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		calls := 0
		err := b.loop.Do(b.ctx, "connect", func(context.Context) error {
			calls++
			if calls == 3 {
				b.cancel()
			}
			return transient
		})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, transient)
		require.Equal(t, 3, calls)
	})
	t.Run("each attempt gets its own timeout", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.loop.AttemptTimeout = time.Hour
		err := b.loop.Do(b.ctx, "start", func(ctx context.Context) error {
			dl, ok := ctx.Deadline()
			require.True(t, ok)
			require.WithinDuration(t, time.Now().Add(time.Hour), dl, time.Minute)
			return nil
		})
		require.NoError(t, err)
	})
}

func TestReason(t *testing.T) {
	t.Parallel()
	require.Equal(t, "provision: stream X: context deadline exceeded",
		Reason(errors.New("provision: stream X: nats: context\n deadline exceeded")))
	require.False(t, strings.Contains(Reason(errors.New("nats: timeout")), "nats:"))
}

func TestPermanentNil(t *testing.T) {
	t.Parallel()
	require.NoError(t, Permanent(nil))
	err := Permanent(context.DeadlineExceeded)
	require.ErrorIs(t, err, ErrPermanent)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the cause stays reachable")
}

// A Loop with only a Log: a real timer, math/rand, and a URL-less log
// line. A step that fails once waits one real (jittered) first delay.
func TestLoopDefaults(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	calls := 0
	err := Loop{Log: slog.New(slog.NewTextHandler(&logs, nil))}.Do(context.Background(), "connect", func(context.Context) error {
		calls++
		if calls == 1 {
			return errors.New("nats: no servers available for connection")
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, calls)
	require.Contains(t, logs.String(), "waiting for NATS at the configured URL: no servers available for connection; retrying in ")
	require.Contains(t, logs.String(), `msg="connect: done, after waiting for NATS at the configured URL"`)

	// Without a Log it logs to slog.Default; a cancelled context ends it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Loop{}.Do(ctx, "connect", func(context.Context) error { return errors.New("nats: timeout") })
	require.ErrorIs(t, err, context.Canceled)
}

func TestLoopSleepError(t *testing.T) {
	t.Parallel()
	stop := errors.New("shutting down")
	err := Loop{Log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		Sleep: func(context.Context, time.Duration) error { return stop }}.Do(context.Background(), "provision",
		func(context.Context) error { return errors.New("nats: timeout") })
	require.ErrorIs(t, err, stop)
	require.EqualError(t, err, "provision: nats: timeout (stopped waiting: shutting down)")
}

func TestSleepCtx(t *testing.T) {
	t.Parallel()
	require.NoError(t, Sleep(context.Background(), time.Nanosecond), "the timer fires")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled, "the context ends the wait")
}

// TestLoopDenied checks that a refusal for permissions ends the attempt
// it happened in at once and is not retried.
func TestLoopDenied(t *testing.T) {
	t.Parallel()
	var (
		attempts int
		refused  = make(chan time.Time, 1)
	)
	denial := errors.New("permissions violation for publish to x")
	l := Loop{
		Log:   slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		Sleep: func(context.Context, time.Duration) error { return nil },
		Denied: func(since time.Time) error {
			select {
			case at := <-refused:
				refused <- at
				if !at.Before(since) {
					return denial
				}
			default:
			}
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := l.Do(ctx, "register", func(actx context.Context) error {
		attempts++
		if attempts == 1 {
			return errors.New("not ready") // retried: nothing refused yet
		}
		refused <- time.Now() // the server refuses this attempt's request...
		<-actx.Done()         // ...which would wait out the attempt timeout
		return actx.Err()
	})
	require.ErrorIs(t, err, ErrPermanent)
	require.ErrorIs(t, err, denial)
	require.ErrorIs(t, err, context.Canceled, "the refusal ended the attempt, not its timeout or ctx")
	require.Equal(t, 2, attempts, "not retried after the refusal")
	require.True(t, strings.HasPrefix(err.Error(), "register: the server refused it: permissions violation"), err.Error())
}
