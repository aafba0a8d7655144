// Reminder sends reminders later: each is a run triggered with a start
// time (client.TriggerOpts.StartAt). The run exists at once, as scheduled —
// listed, awaited, cancelled like any other — and its first state is
// entered at its start time by a durable timer the broker holds, so the
// reminder goes out even if every process restarted meanwhile. One of the
// two reminders is cancelled before its time and never goes out.
//
//	go run ./examples/reminder            # embedded NATS in a temporary directory
//	go run ./examples/reminder -s nats://127.0.0.1:4222
package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// Step is the workflow's state type.
type Step string

// The states.
const (
	Send Step = "send"
	Sent Step = "sent"
)

// Reminder is the run's input.
type Reminder struct {
	To   string `json:"to"`
	Text string `json:"text"`
}

// outbox is what the example "sent" (an email service in a real one).
var outbox = struct {
	sync.Mutex
	sent []string
}{}

// SendReminder sends the reminder.
type SendReminder struct{}

// Kind implements fsm.Task.
func (SendReminder) Kind() string { return "send_reminder" }

// Run implements fsm.Task.
func (SendReminder) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var r Reminder
	if err := tc.Input(&r); err != nil {
		return fsm.Result{}, fsm.Permanent(err)
	}
	outbox.Lock()
	outbox.sent = append(outbox.sent, r.To+": "+r.Text)
	outbox.Unlock()
	return fsm.Next(Sent), nil
}

func workflow() *fsm.Workflow[Step] {
	return fsm.New[Step]("reminder", Send).Register(Send, SendReminder{}).Exit(Sent)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	outbox.Lock()
	outbox.sent = nil // this run's reminders only (a test may run it again)
	outbox.Unlock()
	reg := &fsm.Registry{}
	fsm.Register[SendReminder](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	// Two reminders, each due in a second; the idempotency key makes a
	// repeated trigger (a retried request, say) return the same run. It
	// names the trip by its time: run again, the example is another trip.
	at := time.Now().Add(time.Second)
	trip := strconv.FormatInt(at.UnixMilli(), 10)
	ids := map[string]string{}
	for _, to := range []string{"ada", "grace"} {
		id, err := env.Client.Trigger(ctx, "reminder", &client.TriggerOpts{
			Input:          Reminder{To: to, Text: "your trip is tomorrow"},
			StartAt:        at,
			IdempotencyKey: "trip-reminder-" + to + "-" + trip,
		})
		if err != nil {
			return fmt.Errorf("schedule the reminder to %s: %w", to, err)
		}
		ids[to] = id
	}
	waiting, err := env.Client.List(ctx, &client.ListOpts{Workflow: "reminder", Status: client.RunScheduled})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "scheduled: %d reminders\n", len(waiting))

	// Grace cancelled her trip: her reminder is cancelled before its time.
	if err := env.Client.Cancel(ctx, ids["grace"], "trip cancelled"); err != nil {
		return err
	}
	for _, to := range []string{"ada", "grace"} {
		r, err := env.Client.Await(ctx, ids[to])
		switch {
		case r == nil:
			return fmt.Errorf("await the reminder to %s: %w", to, err)
		case r.Status == client.RunCompleted:
			full, err := env.Client.Get(ctx, r.ID) // with its history
			if err != nil {
				return err
			}
			onTime := !full.History[0].Entered.Before(full.StartAt)
			fmt.Fprintf(out, "%s: %s (sent at or after its start time: %t)\n", to, r.Status, onTime)
		default:
			fmt.Fprintf(out, "%s: %s\n", to, r.Status)
		}
	}
	outbox.Lock()
	defer outbox.Unlock()
	fmt.Fprintf(out, "sent: %q\n", outbox.sent)
	return nil
}
