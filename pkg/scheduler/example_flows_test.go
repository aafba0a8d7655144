package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
)

// Flows are managed from any process through a Client: add, list, refuse a
// bad cron expression. The elected Scheduler (not started here) fires them.
func Example_flows() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "cano-example")
	defer func() { _ = os.RemoveAll(dir) }()
	srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop()
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := provision.Ensure(ctx, js, provision.Config{}); err != nil {
		fmt.Println(err)
		return
	}

	client, _ := scheduler.NewClient(js, scheduler.ClientConfig{})
	_ = client.Add(ctx, scheduler.Flow{ID: "nightly", Workflow: "report",
		Schedule: scheduler.CronIn("0 0 2 * * *", "UTC"), Misfire: scheduler.MisfireCatchUp})
	_ = client.Add(ctx, scheduler.Flow{ID: "poll", Workflow: "poll", Schedule: scheduler.Every(30 * time.Second),
		Backoff: scheduler.BackoffPolicy{StreakLimit: 5}})
	_ = client.Add(ctx, scheduler.Flow{ID: "cleanup", Workflow: "cleanup", Schedule: scheduler.Manual()})

	err = client.Add(ctx, scheduler.Flow{ID: "bad", Workflow: "x", Schedule: scheduler.Cron("0 0 25 * * *")})
	fmt.Println(errors.Is(err, scheduler.ErrInvalidFlow), err)

	flows, _ := client.List(ctx)
	for _, f := range flows {
		fmt.Println(f.Flow.ID, f.Flow.Schedule.Kind, f.Status, f.RunCount)
	}
	// Output:
	// true scheduler: invalid flow: flow "bad": invalid cron expression "0 0 25 * * *": end of range (25) above maximum (23): 25
	// cleanup manual idle 0
	// nightly cron idle 0
	// poll every idle 0
}

// The backoff after the n-th consecutive failure, without jitter.
func ExampleBackoffPolicy_Delay() {
	p := scheduler.BackoffPolicy{Jitter: -1} // cano's defaults, no jitter
	for streak := uint32(1); streak <= 10; streak += 3 {
		fmt.Println(streak, p.Delay(streak, 0.5))
	}
	// Output:
	// 1 1s
	// 4 8s
	// 7 1m4s
	// 10 5m0s
}
