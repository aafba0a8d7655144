package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

type mootStep string

const (
	mootFan  mootStep = "fan"
	mootDone mootStep = "done"
)

// mootGates hold the branches of TestMootTimersRemoved's runs until
// closed: run id → chan struct{}.
var mootGates sync.Map

func mootGate(runID string) chan struct{} {
	g, _ := mootGates.LoadOrStore(runID, make(chan struct{}))
	return g.(chan struct{})
}

type gatedBranch struct{}

func (gatedBranch) Kind() string { return "moot_gated" }
func (gatedBranch) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-mootGate(tc.RunID):
		return fsm.Result{}, nil
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
}

// TestMootTimersRemoved: a run with an hour's total timeout and a split
// with an hour's join timeout has both timers on the timers stream while
// its branches run; once it completes, the coordinator removes them rather
// than leave them an hour.
func TestMootTimersRemoved(t *testing.T) {
	t.Parallel()
	reg := &fsm.Registry{}
	fsm.Register[gatedBranch](reg)
	wf := fsm.New[mootStep]("moot", mootFan).
		RegisterSplit(mootFan, []fsm.Task{gatedBranch{}, gatedBranch{}}, fsm.JoinConfig[mootStep]{JoinState: mootDone, Timeout: time.Hour}).
		Exit(mootDone).TotalTimeout(time.Hour)
	env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{wf}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	id, err := env.Client.Trigger(ctx, "moot", nil)
	require.NoError(t, err)
	kinds := []protocol.TimerKind{protocol.TimerRunDeadline, protocol.TimerJoin}
	for _, kind := range kinds {
		awaitTimer(ctx, t, env, id, kind, true, "scheduled while the branches run")
	}

	close(mootGate(id))
	run, err := env.Client.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, run.Status)
	for _, kind := range kinds {
		awaitTimer(ctx, t, env, id, kind, false, "removed once the run has ended")
	}
}

// timerWaiting reports whether the schedule of runID's timer of kind (step
// 0) is on the timers stream.
func timerWaiting(ctx context.Context, env *canotest.Env, runID string, kind protocol.TimerKind) (bool, error) {
	names := protocol.MustNames("")
	timers, err := env.JS.Stream(ctx, layout.TimersStream(names))
	if err != nil {
		return false, err
	}
	_, err = timers.GetLastMsgForSubject(ctx, names.TimerAtSubject(runID, layout.TimerName(kind, 0)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	return err == nil, err
}

// awaitTimer polls, with a deadline, until runID's timer of kind is
// waiting on the timers stream (want) or gone (!want); what says so.
func awaitTimer(ctx context.Context, t *testing.T, env *canotest.Env, runID string, kind protocol.TimerKind, want bool, what string) {
	t.Helper()
	require.Eventually(t, func() bool {
		ok, err := timerWaiting(ctx, env, runID, kind)
		require.NoError(t, err)
		return ok == want
	}, 10*time.Second, 10*time.Millisecond, "run %s's %s timer: %s", runID, kind, what)
}
