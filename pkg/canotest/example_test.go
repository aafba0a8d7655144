package canotest_test

import (
	"context"
	"fmt"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/worker"
)

// New starts a deployment outside a test's lifetime, as a TestMain does
// to share one among a package's tests (call Close after m.Run). Inside a
// test, canotest.Start(t, opts) does the same and stops it when the test
// ends.
func ExampleNew() {
	ctx := context.Background()
	env, err := canotest.New(ctx, canotest.Options{Registry: registry(), Workflows: []worker.Definer{greeting("greeting")}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close()

	run, err := env.Client.Run(ctx, "greeting", &client.TriggerOpts{Input: "ada"})
	if err != nil {
		fmt.Println(err)
		return
	}
	var out string
	_ = run.Output(&out)
	fmt.Println(run.Status, run.Path, out)
	// Output: completed [greet shout done] HELLO, ADA!
}
