package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// causes receives, from waitForEnd, the cause of each attempt's context
// once it ended; started, that an attempt is running.
var (
	causes  = make(chan error, 4)
	started = make(chan struct{}, 4)
)

// waitForEnd blocks until its attempt's context ends and reports why.
type waitForEnd struct{}

func (waitForEnd) Kind() string { return "cause_wait_for_end" }
func (waitForEnd) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	started <- struct{}{}
	<-ctx.Done()
	causes <- context.Cause(ctx)
	return fsm.Result{}, context.Cause(ctx)
}

// TestTaskContextCause: a task can tell an attempt timeout from a
// cancelled run by its context's cause (fsm.ErrTimeout, fsm.ErrCancelled).
func TestTaskContextCause(t *testing.T) {
	t.Parallel()
	reg := &fsm.Registry{}
	fsm.Register[waitForEnd](reg)
	wf := func(name string, cfg fsm.TaskConfig) *fsm.Workflow[string] {
		return fsm.New[string](name, "wait").Register("wait", waitForEnd{}, cfg).Exit("done")
	}
	env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{
		wf("cause_timeout", fsm.TaskConfig{Retry: fsm.RetryNone(), AttemptTimeout: 100 * time.Millisecond}),
		wf("cause_cancel", fsm.TaskConfig{Retry: fsm.RetryNone()}),
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	next := func() error {
		select {
		case err := <-causes:
			return err
		case <-ctx.Done():
			t.Fatal("the task's context did not end")
			return nil
		}
	}

	_, err := env.Client.Run(ctx, "cause_timeout", nil)
	require.ErrorIs(t, err, fsm.ErrTimeout)
	<-started // the timed-out attempt's
	cause := next()
	require.ErrorIs(t, cause, fsm.ErrTimeout, "cause: %v", cause)
	require.False(t, errors.Is(cause, fsm.ErrCancelled))

	id, err := env.Client.Trigger(ctx, "cause_cancel", nil)
	require.NoError(t, err)
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the task did not start")
	}
	require.NoError(t, env.Client.Cancel(ctx, id, "test"))
	cause = next()
	require.ErrorIs(t, cause, fsm.ErrCancelled, "cause: %v", cause)
	require.False(t, errors.Is(cause, fsm.ErrTimeout))
}
