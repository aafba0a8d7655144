// Package retry waits for the broker: it runs a step (connect, provision,
// start consuming) again and again with a capped exponential backoff and
// one log line per failed attempt, until the step succeeds, fails in a way
// retrying cannot fix, or its context ends. Processes use it at start and
// after an outage, so a broker that is slow to come back (a cluster still
// electing leaders after a full restart) never makes them exit.
package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
)

// Backoff bounds.
const (
	// DelayMin is the wait after the first failed attempt.
	DelayMin = 250 * time.Millisecond
	// DelayMax caps the wait between attempts.
	DelayMax = 10 * time.Second
	// Jitter spreads each wait by up to ±Jitter of itself, so processes
	// restarted together do not retry in step.
	Jitter = 0.2
)

// Delay is the wait after failed attempt number attempt (0 for the first
// failure): DelayMin doubled per attempt, capped at DelayMax, then moved
// by (2r-1)×Jitter of itself for r in [0, 1) (r = 0.5 gives no jitter).
// It is pure: callers pass a random r.
func Delay(attempt int, r float64) time.Duration {
	attempt = max(attempt, 0)
	d := DelayMax
	if attempt < 32 {
		if x := DelayMin << attempt; x > 0 && x < DelayMax {
			d = x
		}
	}
	r = min(max(r, 0), 1)
	return d + time.Duration(float64(d)*Jitter*(2*r-1))
}

// ErrPermanent marks an error retrying cannot fix (a configuration
// error); wrap one with [Permanent].
var ErrPermanent = errors.New("retry: permanent")

type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() error        { return e.err }
func (e permanentError) Is(target error) bool { return target == ErrPermanent }

// Permanent marks err as one that retrying cannot fix: [Loop.Do] returns
// it at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Loop retries a step. The zero value logs to slog.Default and names no
// URL.
type Loop struct {
	// Log receives one warning per failed attempt. Defaults to slog.Default().
	Log *slog.Logger
	// URL names the broker in the log line ("waiting for NATS at URL").
	// It is called per log line, so it can follow reconnects.
	URL func() string
	// Permanent reports errors retrying cannot fix, besides those marked
	// with [Permanent]. Nil means none.
	Permanent func(error) bool
	// Denied, when set, returns the refusal the server sent since a time
	// for the user's permissions (nil if none): an attempt that failed
	// after one is not retried, as waiting does not change permissions.
	// Do returns the attempt's error with the refusal, marked [Permanent].
	Denied func(since time.Time) error
	// AttemptTimeout bounds each attempt's context. Zero means no bound
	// beyond ctx (the step applies its own timeouts).
	AttemptTimeout time.Duration
	// Sleep waits d or until ctx ends; nil means a timer (tests inject one).
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand is the jitter source, in [0, 1); nil means math/rand/v2.
	Rand func() float64
	// Hint, when set, ends the log line of the third failed attempt (once,
	// in parentheses): what the person reading it might do, such as
	// starting a server.
	Hint string
}

// hintAttempt is the failed attempt (from 0) whose log line carries
// Loop.Hint: late enough that a server still starting has had its
// chance, early enough to be seen.
const hintAttempt = 2

// Do runs step until it returns nil, returns a permanent error (returned
// as is), or ctx ends (then it returns the last failure wrapped with
// ctx's error, on one line). Between attempts it logs "waiting for NATS
// at URL: <reason>; retrying in D" with what (a short name of the step)
// and waits [Delay]. Do blocks; it is safe for concurrent use if Log, URL,
// Permanent, Denied, Sleep and Rand are.
func (l Loop) Do(ctx context.Context, what string, step func(ctx context.Context) error) error {
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	sleep := l.Sleep
	if sleep == nil {
		sleep = Sleep
	}
	rnd := l.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	for attempt := 0; ; attempt++ {
		began := time.Now()
		err := l.attempt(ctx, began, step)
		if err != nil && l.Denied != nil {
			if d := l.Denied(began); d != nil {
				return Permanent(fmt.Errorf("%s: the server refused it: %w (the attempt ended with: %w)", what, d, err))
			}
		}
		if err == nil {
			if attempt > 0 {
				log.Info(what+": done, after waiting for NATS at "+l.url(), "step", what, "attempts", attempt+1)
			}
			return nil
		}
		if errors.Is(err, ErrPermanent) || (l.Permanent != nil && l.Permanent(err)) {
			return err
		}
		if ctx.Err() != nil {
			return stopped(what, err, ctx.Err())
		}
		d := Delay(attempt, rnd())
		msg := "waiting for NATS at " + l.url() + ": " + Reason(err) + "; retrying in " + d.Round(time.Millisecond).String()
		if attempt == hintAttempt && l.Hint != "" {
			msg += " (" + l.Hint + ")"
		}
		log.Warn(msg, "step", what, "attempt", attempt+1)
		if serr := sleep(ctx, d); serr != nil {
			return stopped(what, err, serr)
		}
	}
}

// stopped is the error of a wait ended by its context.
func stopped(what string, last, ctxErr error) error {
	return fmt.Errorf("%s: %w (stopped waiting: %w)", what, last, ctxErr)
}

func (l Loop) attempt(ctx context.Context, began time.Time, step func(ctx context.Context) error) error {
	actx, cancel := context.WithCancel(ctx) // cancellable even without a timeout: a refusal ends it
	defer cancel()
	if l.AttemptTimeout > 0 {
		var cancelT context.CancelFunc
		actx, cancelT = context.WithTimeout(actx, l.AttemptTimeout)
		defer cancelT()
	}
	if l.Denied != nil {
		// A refusal ends the attempt at once: the request it refused
		// would only time out.
		done := make(chan struct{})
		defer close(done)
		go func() {
			t := time.NewTicker(deniedPoll)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-actx.Done():
					return
				case <-t.C:
					if l.Denied(began) != nil {
						cancel()
						return
					}
				}
			}
		}()
	}
	return step(actx)
}

// deniedPoll is how often an attempt checks [Loop.Denied].
const deniedPoll = 100 * time.Millisecond

func (l Loop) url() string {
	if l.URL == nil {
		return "the configured URL"
	}
	return l.URL()
}

// Reason is err on one line, without the "nats: " prefixes nats.go adds.
func Reason(err error) string {
	msg := strings.ReplaceAll(err.Error(), "nats: ", "")
	return strings.Join(strings.Fields(msg), " ")
}

// Sleep waits d, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
