package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/client"
)

// Trigger a run and await its end: Run does both. The Run it returns holds
// the status, the states entered and the output of the task that chose the
// exit state; Get reads the whole record, input and times included.
func Example_run() {
	cl, stop, err := deployment()
	must(err)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	run, err := cl.Run(ctx, "greet", &client.TriggerOpts{Input: "ada", IdempotencyKey: "welcome-ada"})
	if err != nil {
		fmt.Println("run failed:", err)
		return
	}
	var greeting string
	if err := run.Output(&greeting); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(run.Status, run.Path, greeting)

	rec, err := cl.Get(ctx, run.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	var name string
	_ = rec.Input(&name)
	fmt.Println(rec.Workflow, name, rec.IdempotencyKey)
	fmt.Println("ended after it started:", !rec.UpdatedAt.Before(rec.CreatedAt), "deadline set:", !rec.Deadline.IsZero())
	// Output:
	// completed [hello excited greeted] HELLO, ADA!
	// greet ada welcome-ada
	// ended after it started: true deadline set: false
}
