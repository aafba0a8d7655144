package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

type rerunStep string

const (
	rerunCheck rerunStep = "check"
	rerunShip  rerunStep = "ship"
	rerunDone  rerunStep = "done"
)

// shipBroken makes rerunShipTask fail (a bug, later fixed).
var shipBroken atomic.Bool

type rerunCheckTask struct{}

func (rerunCheckTask) Kind() string { return "rerun_check" }
func (rerunCheckTask) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(rerunShip), nil
}

type rerunShipTask struct{}

func (rerunShipTask) Kind() string { return "rerun_ship" }
func (rerunShipTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	if shipBroken.Load() {
		return fsm.Result{}, fsm.Permanent(errors.New("ship: injected bug"))
	}
	var in map[string]any
	if err := tc.Input(&in); err != nil {
		return fsm.Result{}, fsm.Permanent(err)
	}
	return fsm.NextWith(rerunDone, in["order"]), nil
}

// TestRerun: a failed run is run again like it — same workflow, version,
// initial state and input (JSON stays JSON) — and completes once the bug
// is fixed; a run still going is refused; an idempotency key makes a
// second rerun return the first.
func TestRerun(t *testing.T) {
	t.Parallel()
	reg := &fsm.Registry{}
	fsm.Register[rerunCheckTask](reg)
	fsm.Register[rerunShipTask](reg)
	wf := fsm.New[rerunStep]("rerun", rerunCheck).Register(rerunCheck, rerunCheckTask{}).
		Register(rerunShip, rerunShipTask{}).Exit(rerunDone)
	env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{wf}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	shipBroken.Store(true)
	input := json.RawMessage(`{"order": "A-42"}`)
	for _, state := range []string{"", string(rerunShip)} { // the definition's initial state, then another
		failed, err := env.Client.Run(ctx, "rerun", &client.TriggerOpts{Input: input, InitialState: state})
		require.Error(t, err)
		require.Equal(t, client.RunFailed, failed.Status)

		shipBroken.Store(false)
		id, err := env.Client.Rerun(ctx, failed.ID, nil)
		require.NoError(t, err)
		require.NotEqual(t, failed.ID, id)
		again, err := env.Client.Await(ctx, id)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, again.Status)
		var order string
		require.NoError(t, again.Output(&order))
		require.Equal(t, "A-42", order, "the same input")
		got, err := env.Client.Get(ctx, id)
		require.NoError(t, err)
		first, err := env.Client.Get(ctx, failed.ID)
		require.NoError(t, err)
		require.Equal(t, first.Version, got.Version)
		require.Equal(t, first.Path[0], got.Path[0], "the same initial state")
		var raw json.RawMessage
		require.NoError(t, got.Input(&raw))
		require.JSONEq(t, string(input), string(raw), "JSON input stays JSON")

		// With a key, pressed twice: one rerun.
		k1, err := env.Client.Rerun(ctx, failed.ID, &client.RerunOpts{IdempotencyKey: "rerun-" + failed.ID, LatestVersion: true})
		require.NoError(t, err)
		k2, err := env.Client.Rerun(ctx, failed.ID, &client.RerunOpts{IdempotencyKey: "rerun-" + failed.ID, LatestVersion: true})
		require.NoError(t, err)
		require.Equal(t, k1, k2)
		// Rerun keys are the run's own: the same key on the rerun itself
		// (once it has ended), or on a trigger, is another key.
		_, err = env.Client.Await(ctx, k1)
		require.NoError(t, err)
		k3, err := env.Client.Rerun(ctx, k1, &client.RerunOpts{IdempotencyKey: "rerun-" + failed.ID})
		require.NoError(t, err)
		require.NotEqual(t, k1, k3)
		k4, err := env.Client.Trigger(ctx, "rerun", &client.TriggerOpts{IdempotencyKey: "rerun-" + failed.ID, Input: input})
		require.NoError(t, err)
		require.NotEqual(t, k1, k4)
		for _, id := range []string{k3, k4} {
			_, err := env.Client.Await(ctx, id)
			require.NoError(t, err)
		}
		shipBroken.Store(true)
	}

	// A run that has not ended is refused.
	later, err := env.Client.Trigger(ctx, "rerun", &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	_, err = env.Client.Rerun(ctx, later, nil)
	require.ErrorIs(t, err, client.ErrNotEnded)
	require.ErrorContains(t, err, "is scheduled: rerun a run once it has ended")
	_, err = env.Client.Rerun(ctx, "no-such-run", nil)
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = env.Client.Rerun(ctx, "", nil)
	require.ErrorContains(t, err, "no run id given")
}
