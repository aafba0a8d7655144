// Circuit_breaker shares one breaker between runs (and every worker): two
// failures in a row open it, so the next run fails fast with ErrCircuitOpen
// without calling the service; after the 1.5 s cool-down a probe goes
// through, succeeds, and closes it again.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/client"
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

// breakerName is the shared breaker's name.
const breakerName = "inventory_api"

// The simulated service: down until healthy is set; calls counts the calls
// that reached it.
var (
	healthy atomic.Bool
	calls   atomic.Int32
)

// CallInventory calls the service.
type CallInventory struct{}

// Kind implements fsm.Task.
func (CallInventory) Kind() string { return "call_inventory" }

// Run implements fsm.Task.
func (CallInventory) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	calls.Add(1)
	if !healthy.Load() {
		return fsm.Result{}, errors.New("inventory service: 503")
	}
	return fsm.Next(Done), nil
}

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("circuit_breaker", Call).
		Register(Call, CallInventory{}, fsm.TaskConfig{
			Retry:         fsm.RetryNone(),
			Breaker:       breakerName,
			BreakerPolicy: &breaker.Policy{FailureThreshold: 2, ResetTimeout: 1500 * time.Millisecond, HalfOpenMaxCalls: 1},
		}).
		Exit(Done)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	healthy.Store(false) // the service starts down (also when run again in one process)
	reg := &fsm.Registry{}
	fsm.Register[CallInventory](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()
	cl := env.Client
	if err := cl.ResetBreaker(ctx, breakerName); err != nil && !errors.Is(err, client.ErrBreakerNotFound) {
		return err
	}

	step := func(label string) error {
		before := calls.Load()
		_, err := cl.Run(ctx, "circuit_breaker", nil)
		state, berr := breakerState(ctx, cl)
		if berr != nil {
			return berr
		}
		outcome := "completed"
		switch {
		case errors.Is(err, fsm.ErrCircuitOpen):
			outcome = "failed fast: circuit open"
		case err != nil:
			outcome = "failed: service down"
		}
		fmt.Fprintf(out, "%-22s %-26s service called: %-5v breaker: %s\n", label, outcome, calls.Load() > before, state)
		return nil
	}
	for _, label := range []string{"run 1 (service down)", "run 2 (service down)", "run 3"} {
		if err := step(label); err != nil {
			return err
		}
	}
	// The service recovers; wait for the breaker's cool-down to pass.
	healthy.Store(true)
	info, err := breakerInfo(ctx, cl)
	if err != nil {
		return err
	}
	select {
	case <-time.After(time.Until(info.OpenUntil)):
	case <-ctx.Done():
		return ctx.Err()
	}
	return step("after the cool-down")
}

func breakerInfo(ctx context.Context, cl *client.Client) (client.BreakerInfo, error) {
	all, err := cl.Breakers(ctx)
	if err != nil {
		return client.BreakerInfo{}, err
	}
	for _, b := range all {
		if b.Name == breakerName {
			return b, nil
		}
	}
	return client.BreakerInfo{}, fmt.Errorf("breaker %s not found", breakerName)
}

func breakerState(ctx context.Context, cl *client.Client) (client.BreakerState, error) {
	b, err := breakerInfo(ctx, cl)
	return b.State, err
}
