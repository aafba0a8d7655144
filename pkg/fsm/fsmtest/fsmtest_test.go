package fsmtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/fsm/fsmtest"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/kvstore"
)

type Order struct {
	Qty       int `msgpack:"qty"`
	UnitPrice int `msgpack:"unit_price"`
	Total     int `msgpack:"total"`
}

// Price reads the order the previous state handed on and hands it on priced.
type Price struct{}

func (Price) Kind() string { return "price" }
func (Price) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var o Order
	if err := tc.Previous(&o); err != nil {
		return fsm.Result{}, err
	}
	o.Total = o.Qty * o.UnitPrice
	return fsm.NextWith("charge", o), nil
}

// Sum adds its split branches' outputs and stores the total.
type Sum struct{}

func (Sum) Kind() string { return "sum" }
func (Sum) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	bs, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	total := 0
	for _, b := range bs {
		n, err := fsm.BranchOutput[int](b)
		if err != nil {
			return fsm.Result{}, err
		}
		total += n
	}
	if err := kvstore.PutValue(ctx, tc.Store, "total", total); err != nil {
		return fsm.Result{}, err
	}
	return fsm.Next("done"), nil
}

func ExampleNewTaskContext() {
	tc, err := fsmtest.NewTaskContext(fsmtest.Context{State: "price", Previous: Order{Qty: 2, UnitPrice: 5}})
	if err != nil {
		panic(err)
	}
	res, err := Price{}.Run(context.Background(), tc)
	fmt.Println(res.NextState(), res.Output().(Order).Total, err)
	// Output: charge 10 <nil>
}

func TestNewTaskContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	tc, err := fsmtest.NewTaskContext(fsmtest.Context{})
	require.NoError(t, err)
	require.Equal(t, "test-run", tc.RunID)
	require.Equal(t, -1, tc.Branch)
	require.Equal(t, 1, tc.Attempt)
	require.ErrorIs(t, tc.Previous(new(Order)), fsm.ErrNoPrevious)
	_, err = tc.Branches(ctx)
	require.ErrorIs(t, err, fsm.ErrNotJoin)

	tc, err = fsmtest.NewTaskContext(fsmtest.Context{Input: map[string]int{"n": 3}, InBranch: true, Branch: 2, Attempt: 2, MaxAttempts: 4})
	require.NoError(t, err)
	var in map[string]int
	require.NoError(t, tc.Input(&in))
	require.Equal(t, 3, in["n"])
	require.Equal(t, 2, tc.Branch)
	require.Equal(t, 4, tc.MaxAttempts)

	out := func(n int) []byte {
		b, err := fsmtest.EncodeOutput(n)
		require.NoError(t, err)
		return b
	}
	store := kvstore.NewMemory()
	tc, err = fsmtest.NewTaskContext(fsmtest.Context{Store: store, Branches: []fsm.BranchOutcome{
		{Index: 0, Status: fsm.BranchSucceeded, Output: out(4)},
		{Index: 1, Status: fsm.BranchSucceeded, Output: out(5)},
	}})
	require.NoError(t, err)
	res, err := Sum{}.Run(ctx, tc)
	require.NoError(t, err)
	require.Equal(t, "done", res.NextState())
	total, err := kvstore.GetAs[int](ctx, store, "total")
	require.NoError(t, err)
	require.Equal(t, 9, total)

	_, err = fsmtest.NewTaskContext(fsmtest.Context{Input: make(chan int)})
	require.ErrorContains(t, err, "fsmtest: encode Input")
}

// TestStoreIn: in a unit test the task's other scopes are views of the
// Store the test gave, so a test reads them back there.
func TestStoreIn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	mem := kvstore.NewMemory()
	tc, err := fsmtest.NewTaskContext(fsmtest.Context{Workflow: "sync", Store: mem})
	require.NoError(t, err)
	require.NoError(t, kvstore.PutValue(ctx, tc.StoreIn(kvstore.GlobalScope()), "cursor", 7))
	require.NoError(t, kvstore.PutValue(ctx, tc.StoreIn(kvstore.WorkflowScope(tc.Workflow)), "cursor", 8))
	n, err := kvstore.GetAs[int](ctx, mem, "g.cursor")
	require.NoError(t, err)
	require.Equal(t, 7, n)
	n, err = kvstore.GetAs[int](ctx, mem, "wf.sync.cursor")
	require.NoError(t, err)
	require.Equal(t, 8, n)

	// A store scoped to the run, as a worker gives it: the scopes are
	// beside the run's, not inside it.
	tc, err = fsmtest.NewTaskContext(fsmtest.Context{RunID: "r1", Store: kvstore.Scoped(mem, kvstore.RunScope("r1"))})
	require.NoError(t, err)
	n, err = kvstore.GetAs[int](ctx, tc.StoreIn(kvstore.GlobalScope()), "cursor")
	require.NoError(t, err)
	require.Equal(t, 7, n)

	tc, err = fsmtest.NewTaskContext(fsmtest.Context{})
	require.NoError(t, err)
	require.Nil(t, tc.StoreIn(kvstore.GlobalScope()), "no Store, no scopes")
}

// Ask is one branch of FanOut's split.
type Ask struct {
	Supplier string `json:"supplier"`
}

func (Ask) Kind() string { return "ask" }
func (Ask) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next("collect"), nil
}

// FanOut splits into one Ask per supplier of its input.
type FanOut struct{}

func (FanOut) Kind() string { return "fan_out" }
func (FanOut) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var suppliers []string
	if err := tc.Input(&suppliers); err != nil {
		return fsm.Result{}, err
	}
	tasks := make([]fsm.Task, len(suppliers))
	for i, s := range suppliers {
		tasks[i] = Ask{Supplier: s}
	}
	return fsm.SplitInto(fsm.JoinConfig[string]{Strategy: join.Quorum(2), JoinState: "collect",
		Timeout: time.Minute, Bulkhead: 4}, tasks...), nil
}

// TestSplit: a unit test sees the branches and the join of a dynamic split.
func TestSplit(t *testing.T) {
	t.Parallel()
	tc, err := fsmtest.NewTaskContext(fsmtest.Context{Input: []string{"a", "b", "c"}})
	require.NoError(t, err)
	res, err := FanOut{}.Run(t.Context(), tc)
	require.NoError(t, err)
	require.Empty(t, res.NextState())
	tasks, cfg, ok := res.Split()
	require.True(t, ok)
	require.Equal(t, []fsm.Task{Ask{Supplier: "a"}, Ask{Supplier: "b"}, Ask{Supplier: "c"}}, tasks)
	require.Equal(t, fsm.JoinConfig[string]{Strategy: join.Quorum(2), JoinState: "collect",
		Timeout: time.Minute, Bulkhead: 4}, cfg)

	_, _, ok = fsm.Next("done").Split()
	require.False(t, ok)
}

// Release is a compensation: it reads the failure that routed the run here.
type Release struct{}

func (Release) Kind() string { return "release" }
func (Release) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	f := tc.Failure()
	if f == nil {
		return fsm.Next("done"), nil
	}
	return fsm.NextWith("cancelled", f.Error()), nil
}

// TestFailure: Context.Failure is what TaskContext.Failure returns, as the
// failure of the state FailedState.
func TestFailure(t *testing.T) {
	t.Parallel()
	tc, err := fsmtest.NewTaskContext(fsmtest.Context{State: "release", Failure: fsm.Permanent(fmt.Errorf("card declined")), FailedState: "charge"})
	require.NoError(t, err)
	f := tc.Failure()
	require.ErrorIs(t, f, fsm.ErrPermanent)
	var se *fsm.StateError
	require.ErrorAs(t, f, &se)
	require.Equal(t, "charge", se.State)
	res, err := Release{}.Run(context.Background(), tc)
	require.NoError(t, err)
	require.Equal(t, "cancelled", res.NextState())
	require.Contains(t, res.Output(), "card declined")

	// No failure: an ordinary previous output is not one.
	tc, err = fsmtest.NewTaskContext(fsmtest.Context{State: "release", Previous: map[string]string{"order": "o-1"}})
	require.NoError(t, err)
	require.NoError(t, tc.Failure())
	res, err = Release{}.Run(context.Background(), tc)
	require.NoError(t, err)
	require.Equal(t, "done", res.NextState())
}
