package canotest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

// waitTask runs until its attempt is cancelled: a state that only a
// timeout or a cancel ends.
type waitTask struct{}

func (waitTask) Kind() string { return "canotest_wait" }
func (waitTask) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	<-ctx.Done()
	return fsm.Result{}, ctx.Err()
}

// fire fires run's timer of kind once it is scheduled (its step is written
// a moment after the trigger returns), polling with a deadline.
func fire(t *testing.T, env *canotest.Env, runID string, kind protocol.TimerKind) {
	t.Helper()
	ctx := ctx(t)
	for {
		err := env.FireTimer(ctx, runID, kind)
		if err == nil {
			return
		}
		require.ErrorIs(t, err, canotest.ErrNoTimer)
		select {
		case <-ctx.Done():
			t.Fatalf("the %s timer of run %s was never scheduled: %v", kind, runID, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestFireTimer: a test fires a run's total timeout, join timeout or
// delayed start now, set an hour ahead, and sees what it does; a timer
// that is not waiting is refused with ErrNoTimer, a kind that is not a
// timer with an error that names the kinds.
func TestFireTimer(t *testing.T) {
	t.Parallel()
	reg := registry()
	fsm.Register[waitTask](reg)
	type st = step
	const wait, fan st = "wait", "fan"
	deadline := fsm.New[st]("fire_deadline", wait).Register(wait, waitTask{}).Exit(done).TotalTimeout(time.Hour)
	joined := fsm.New[st]("fire_join", fan).
		RegisterSplit(fan, []fsm.Task{waitTask{}, waitTask{}}, fsm.JoinConfig[st]{JoinState: done, Timeout: time.Hour}).
		Exit(done)
	env := canotest.Start(t, canotest.Options{Registry: reg,
		Workflows: []worker.Definer{deadline, joined, greeting("fire_later")}})
	ctx := ctx(t)

	t.Run("total timeout", func(t *testing.T) {
		id, err := env.Client.Trigger(ctx, "fire_deadline", nil)
		require.NoError(t, err)
		fire(t, env, id, protocol.TimerRunDeadline)
		run, err := env.Client.Await(ctx, id)
		require.ErrorIs(t, err, fsm.ErrWorkflowTimeout)
		require.Equal(t, client.RunFailed, run.Status)
		require.ErrorIs(t, env.FireTimer(ctx, id, protocol.TimerRunDeadline), canotest.ErrNoTimer, "it fired, and is gone")
	})

	t.Run("join timeout", func(t *testing.T) {
		id, err := env.Client.Trigger(ctx, "fire_join", nil)
		require.NoError(t, err)
		fire(t, env, id, protocol.TimerJoin)
		run, err := env.Client.Await(ctx, id)
		require.Error(t, err)
		require.Equal(t, client.RunFailed, run.Status)
		got, err := env.Client.Get(ctx, id)
		require.NoError(t, err)
		require.NotEmpty(t, got.History)
		split := got.History[0].Split
		require.NotNil(t, split)
		require.True(t, split.JoinTimeout, "the join decided on its timeout")
	})

	t.Run("delayed start", func(t *testing.T) {
		id, err := env.Client.Trigger(ctx, "fire_later", &client.TriggerOpts{Input: "later", StartAt: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		fire(t, env, id, protocol.TimerStart)
		run, err := env.Client.Await(ctx, id)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, run.Status)
	})

	t.Run("no such timer", func(t *testing.T) {
		run, err := env.Client.Run(ctx, "fire_later", &client.TriggerOpts{Input: "now"})
		require.NoError(t, err)
		err = env.FireTimer(ctx, run.ID, protocol.TimerRunDeadline)
		require.ErrorIs(t, err, canotest.ErrNoTimer)
		require.Contains(t, err.Error(), "has no deadline timer")
		err = env.FireTimer(ctx, run.ID, protocol.TimerPurge)
		require.Error(t, err)
		require.False(t, errors.Is(err, canotest.ErrNoTimer))
		require.Contains(t, err.Error(), "use protocol.TimerStart, protocol.TimerRunDeadline or protocol.TimerJoin")
	})
}
