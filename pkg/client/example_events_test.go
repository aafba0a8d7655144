package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/client"
)

// Watch one run's events as it moves: the stream starts before the trigger,
// so none is missed.
func ExampleClient_Events() {
	cl, stop, err := deployment()
	must(err)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const id = "greet-bob"
	st, err := cl.Events(ctx, &client.EventFilter{RunID: id})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Stop()
	if _, err := cl.Trigger(ctx, "greet", &client.TriggerOpts{RunID: id, Input: "bob"}); err != nil {
		fmt.Println(err)
		return
	}
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(ev.Type, ev.State, ev.Status)
		if ev.Type.Terminal() {
			var greeting string
			_ = ev.Output(&greeting)
			fmt.Println(greeting, !ev.Time.IsZero())
			break
		}
	}
	// Output:
	// started hello running
	// state excited running
	// completed greeted completed
	// HELLO, BOB! true
}
