package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
)

// A failed run comes back as the run and its typed error: errors.Is
// matches fsm's category sentinels, and errors.As finds the state where
// it failed.
func Example_failure() {
	cl, stop, err := deployment()
	must(err)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	run, err := cl.Run(ctx, "greet", &client.TriggerOpts{Input: ""})
	fmt.Println(run.Status, errors.Is(err, fsm.ErrPermanent), errors.Is(run.Err, fsm.ErrPermanent))
	var se *fsm.StateError
	if errors.As(err, &se) {
		fmt.Println("failed in", se.State, "after", se.Attempt, "attempt")
	}

	_, err = cl.Run(ctx, "nowhere", nil)
	fmt.Println(errors.Is(err, fsm.ErrConfiguration))
	// Output:
	// failed true true
	// failed in hello after 1 attempt
	// true
}
