// Retry_backoff shows the retry modes: a flaky call that fails twice and
// then succeeds under exponential backoff (50 ms, ×2), and a call that always
// fails under a fixed retry, which ends the run with ErrRetryExhausted.
// fsm.Permanent skips the remaining attempts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Call State = "call"
	Done State = "done"
)

// CallService fails its first FailFirst attempts (every attempt if
// FailFirst < 0; a permanent error if Permanent).
type CallService struct {
	FailFirst int  `msgpack:"fail_first"`
	Permanent bool `msgpack:"permanent"`
}

// Kind implements fsm.Task.
func (CallService) Kind() string { return "call_service" }

// Run implements fsm.Task.
func (c CallService) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	if c.FailFirst < 0 || tc.Attempt <= c.FailFirst {
		attempts.add(fmt.Sprintf("%s: attempt %d of %d failed", tc.Workflow, tc.Attempt, tc.MaxAttempts))
		err := errors.New("service unavailable")
		if c.Permanent {
			err = fsm.Permanent(errors.New("request refused: bad credentials"))
		}
		return fsm.Result{}, err
	}
	attempts.add(fmt.Sprintf("%s: attempt %d of %d succeeded", tc.Workflow, tc.Attempt, tc.MaxAttempts))
	return fsm.Next(Done), nil
}

// attempts records what the tasks saw, for printing (the worker runs in
// this process).
var attempts log

type log struct {
	sync.Mutex
	lines []string
}

func (l *log) add(s string) { l.Lock(); l.lines = append(l.lines, s); l.Unlock() }
func (l *log) take() []string {
	l.Lock()
	defer l.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

func workflows() []worker.Definer {
	one := func(name string, task CallService, retry fsm.RetryMode) worker.Definer {
		return fsm.New[State](name, Call).Register(Call, task, fsm.TaskConfig{Retry: retry}).Exit(Done)
	}
	return []worker.Definer{
		one("flaky", CallService{FailFirst: 2}, fsm.RetryExponentialCustom(3, 50*time.Millisecond, 2, time.Second, 0.1)),
		one("down", CallService{FailFirst: -1}, fsm.RetryFixed(2, 50*time.Millisecond)),
		one("refused", CallService{FailFirst: -1, Permanent: true}, fsm.RetryFixed(2, 50*time.Millisecond)),
	}
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[CallService](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: workflows()})
	if err != nil {
		return err
	}
	defer env.Close()

	for _, name := range []string{"flaky", "down", "refused"} {
		r, err := env.Client.Run(ctx, name, nil)
		if r == nil {
			return err
		}
		for _, l := range attempts.take() {
			fmt.Fprintln(out, l)
		}
		switch {
		case err == nil:
			fmt.Fprintf(out, "%s: %s via %s\n", name, r.Status, strings.Join(r.Path, " → "))
		case errors.Is(err, fsm.ErrRetryExhausted):
			fmt.Fprintf(out, "%s: %s, retries exhausted\n", name, r.Status)
		default:
			fmt.Fprintf(out, "%s: %s: %v\n", name, r.Status, err)
		}
	}
	return nil
}
