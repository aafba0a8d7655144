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
	"github.com/cano-nats/cano/pkg/worker"
)

type sagaStep string

const (
	sagaCharge    sagaStep = "charge"
	sagaRelease   sagaStep = "release"
	sagaShipped   sagaStep = "shipped"
	sagaCancelled sagaStep = "cancelled"
)

// sagaCharge fails as its parameter says: "declined" permanently, "slow"
// by outliving its attempt timeout, "flaky" on every attempt.
type chargeCard struct {
	Fail string `msgpack:"fail"`
}

func (chargeCard) Kind() string { return "saga_charge" }
func (c chargeCard) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	switch c.Fail {
	case "declined":
		return fsm.Result{}, fsm.Permanent(errors.New("card declined"))
	case "slow":
		<-ctx.Done()
		return fsm.Result{}, context.Cause(ctx)
	case "flaky":
		return fsm.Result{}, errors.New("gateway unavailable")
	}
	return fsm.Next(sagaShipped), nil
}

// releaseStock is the compensation: it hands on what failed.
type releaseStock struct{}

func (releaseStock) Kind() string { return "saga_release" }
func (releaseStock) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	f := tc.Failure()
	if f == nil {
		return fsm.Result{}, fsm.Permanent(errors.New("release reached without a failure"))
	}
	var se *fsm.StateError
	if !errors.As(f, &se) {
		return fsm.Result{}, fsm.Permanent(errors.New("the failure names no state"))
	}
	out := se.State // then what the failure matches, in a fixed order
	for _, c := range []struct {
		name   string
		target error
	}{{"permanent", fsm.ErrPermanent}, {"retry_exhausted", fsm.ErrRetryExhausted}, {"timeout", fsm.ErrTimeout}} {
		if errors.Is(f, c.target) {
			out += " " + c.name
		}
	}
	return fsm.NextWith(sagaCancelled, out), nil
}

// TestOnFailureEndToEnd: with real workers, a charge that fails for good
// (permanently, by its attempt timeout, its retries exhausted) routes the
// run to the compensation, which reads the failure and completes the run.
func TestOnFailureEndToEnd(t *testing.T) {
	t.Parallel()
	reg := &fsm.Registry{}
	fsm.Register[chargeCard](reg)
	fsm.Register[releaseStock](reg)
	saga := func(name, fail string) *fsm.Workflow[sagaStep] {
		return fsm.New[sagaStep](name, sagaCharge).
			Register(sagaCharge, chargeCard{Fail: fail}, fsm.TaskConfig{
				Retry:          fsm.RetryFixed(2, 10*time.Millisecond),
				AttemptTimeout: 200 * time.Millisecond}).
			OnFailure(sagaCharge, sagaRelease).
			Register(sagaRelease, releaseStock{}).
			Exit(sagaShipped, sagaCancelled)
	}
	env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{
		saga("saga_ok", ""), saga("saga_declined", "declined"), saga("saga_slow", "slow"), saga("saga_flaky", "flaky")}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	run, err := env.Client.Run(ctx, "saga_ok", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"charge", "shipped"}, run.Path)

	for wf, want := range map[string]string{"saga_declined": "charge permanent", "saga_slow": "charge retry_exhausted timeout", "saga_flaky": "charge retry_exhausted"} {
		run, err := env.Client.Run(ctx, wf, nil)
		require.NoError(t, err, wf)
		require.Equal(t, client.RunCompleted, run.Status, wf)
		require.Equal(t, []string{"charge", "release", "cancelled"}, run.Path, wf)
		var got string
		require.NoError(t, run.Output(&got))
		require.Equal(t, want, got, wf)
		rec, err := env.Client.Get(ctx, run.ID) // with its history
		require.NoError(t, err)
		require.Len(t, rec.History, 3, wf)
		require.Equal(t, client.StepOutcome("failed"), rec.History[0].Outcome, wf)
		require.Error(t, rec.History[0].Err, "%s: the failed step keeps its error", wf)
	}
}
