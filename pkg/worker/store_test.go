package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
	"github.com/cano-nats/cano/pkg/worker"
)

// countRuns counts its runs in the run's, the workflow's and the global
// scope of the store, and completes with the three counts it wrote.
type countRuns struct{}

type runCounts struct {
	Run, Workflow, Global int
}

func (countRuns) Kind() string { return "count_runs" }

func (countRuns) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	incr := func(s kvstore.Store) (int, error) {
		n, err := kvstore.GetAs[int](ctx, s, "runs")
		if err != nil && !errors.Is(err, kvstore.ErrNotFound) {
			return 0, err
		}
		return n + 1, kvstore.PutValue(ctx, s, "runs", n+1)
	}
	var c runCounts
	var err error
	if c.Run, err = incr(tc.Store); err != nil {
		return fsm.Result{}, err
	}
	if c.Workflow, err = incr(tc.StoreIn(kvstore.WorkflowScope(tc.Workflow))); err != nil {
		return fsm.Result{}, err
	}
	if c.Global, err = incr(tc.StoreIn(kvstore.GlobalScope())); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith("done", c), nil
}

// TestStoreIn: a task reaches the global and workflow scopes of the store
// with TaskContext.StoreIn, so a value outlives its run (a scheduled job's
// cursor), while tc.Store stays the run's own.
func TestStoreIn(t *testing.T) {
	t.Parallel()
	reg := &fsm.Registry{}
	fsm.Register[countRuns](reg)
	wf := fsm.New[string]("count_runs", "count").Register("count", countRuns{}).Exit("done")
	env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{wf}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	for i := 1; i <= 2; i++ {
		run, err := env.Client.Run(ctx, "count_runs", &client.TriggerOpts{})
		require.NoError(t, err)
		var got runCounts
		require.NoError(t, run.Output(&got))
		require.Equal(t, runCounts{Run: 1, Workflow: i, Global: i}, got, "run %d", i)
	}

	// The keys are where the scopes say, for any process to read.
	st, err := natskv.New(ctx, env.JS, natskv.Config{})
	require.NoError(t, err)
	n, err := kvstore.GetAs[int](ctx, st, "g.runs")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = kvstore.GetAs[int](ctx, st, "wf.count_runs.runs")
	require.NoError(t, err)
	require.Equal(t, 2, n)
}
