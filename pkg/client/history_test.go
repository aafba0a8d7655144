package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// histFlaky fails its first two attempts and moves on with the third.
type histFlaky struct{}

func (histFlaky) Kind() string { return "hist_flaky" }
func (histFlaky) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	if tc.Attempt < 3 {
		return fsm.Result{}, errors.New("not yet")
	}
	return fsm.Next(S("fan")), nil
}

// histBranch succeeds at once, or waits for its cancellation.
type histBranch struct {
	Hang bool `msgpack:"hang"`
}

func (histBranch) Kind() string { return "hist_branch" }
func (b histBranch) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	if b.Hang {
		<-ctx.Done()
		return fsm.Result{}, ctx.Err()
	}
	return fsm.NextWith(S(""), 1), nil
}

// histJoin is the join state's task.
type histJoin struct{}

func (histJoin) Kind() string { return "hist_join" }
func (histJoin) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(SDone), nil
}

// A run with a retried task and a split reads back its history with
// client.Get: each step's state, kind, times, attempts and worker, the
// split's counts and join decision, and the run's totals.
func TestRunHistory(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, _ := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg := &fsm.Registry{}
	fsm.Register[histFlaky](reg)
	fsm.Register[histBranch](reg)
	fsm.Register[histJoin](reg)
	wf := fsm.New[S]("history", "prep").
		Register("prep", histFlaky{}, fsm.TaskConfig{Retry: fsm.RetryFixed(3, 10*time.Millisecond)}).
		RegisterSplit("fan", []fsm.Task{histBranch{}, histBranch{Hang: true}, histBranch{}},
			fsm.JoinConfig[S]{Strategy: join.Quorum(2), JoinState: "sum"}).
		Register("sum", histJoin{}).
		Exit(SDone)
	w, err := worker.New(nc, worker.Config{ID: "hist-worker", Registry: reg, Workflows: []worker.Definer{wf}, AckWait: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	begun := time.Now()
	out, err := cl.Run(ctx, "history", nil)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	rec, err := cl.Get(ctx, out.ID)
	require.NoError(t, err)

	h := rec.History
	require.Len(t, h, 4, "steps: %+v", h)
	for i, s := range h {
		require.Equal(t, i, s.Seq)
		require.False(t, s.Entered.Before(begun))
		require.False(t, s.Left.Before(s.Entered))
		require.Equal(t, client.StepOutcome("ok"), s.Outcome)
		require.NoError(t, s.Err)
		if i > 0 {
			require.Equal(t, h[i-1].Left, s.Entered, "a step is left when the next is entered")
		}
	}

	prep := h[0]
	require.Equal(t, "prep", prep.State)
	require.Equal(t, client.StepKind("task"), prep.Kind)
	require.Equal(t, 3, prep.Attempts)
	require.Equal(t, "hist-worker", prep.Worker)
	require.True(t, prep.AttemptStarted.After(prep.Entered), "the final attempt began after the first")
	require.Greater(t, prep.AttemptDuration, time.Duration(0))
	require.False(t, prep.AttemptStarted.Add(prep.AttemptDuration).After(prep.Left))

	fan := h[1]
	require.Equal(t, "fan", fan.State)
	require.Equal(t, client.StepKind("split"), fan.Kind)
	require.Equal(t, &client.SplitSummary{Strategy: string(protocol.JoinQuorum), Required: 2, Total: 3, Succeeded: 2,
		Cancelled: 1, Decision: "satisfied"}, fan.Split)

	sum := h[2]
	require.Equal(t, "sum", sum.State)
	require.Equal(t, client.StepKind("join"), sum.Kind)
	require.Equal(t, 1, sum.Attempts)
	require.Equal(t, "hist-worker", sum.Worker)

	require.Equal(t, "done", h[3].State)
	require.Equal(t, client.StepKind("exit"), h[3].Kind)
	require.Equal(t, h[3].Entered, h[3].Left)
	require.Equal(t, rec.UpdatedAt, h[3].Left)

	// prep: 3 attempts (2 failed); two branches and the join: 1 each; the
	// hanging branch was cancelled and reported nothing.
	require.Equal(t, client.Totals{Steps: 4, Attempts: 6, FailedAttempts: 2}, rec.Totals)
}
