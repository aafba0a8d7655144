// Saga books a trip as a saga: reserve a seat, charge the card, confirm.
// The charge's failures are routed (fsm.Workflow.OnFailure) to a state
// that releases the seat, so a card the gateway keeps refusing ends the run
// in cancelled — with the seat released and the failure named — instead of
// a failed run that holds a seat nobody pays for.
//
//	go run ./examples/saga            # embedded NATS in a temporary directory
//	go run ./examples/saga -s nats://127.0.0.1:4222
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
	Reserve   Step = "reserve"
	Charge    Step = "charge"
	Confirm   Step = "confirm"
	Release   Step = "release"
	Booked    Step = "booked"
	Cancelled Step = "cancelled"
)

// Trip is the run's input.
type Trip struct {
	Traveller string `json:"traveller"`
	Card      string `json:"card"`
}

// seats is the example's seat inventory, shared by its tasks (a worker
// resource in a real deployment).
var seats = struct {
	sync.Mutex
	held map[string]bool
}{held: map[string]bool{}}

// ReserveSeat holds a seat for the traveller.
type ReserveSeat struct{}

// Kind implements fsm.Task.
func (ReserveSeat) Kind() string { return "reserve_seat" }

// Run implements fsm.Task.
func (ReserveSeat) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var trip Trip
	if err := tc.Input(&trip); err != nil {
		return fsm.Result{}, err
	}
	seats.Lock()
	seats.held[trip.Traveller] = true
	seats.Unlock()
	return fsm.Next(Charge), nil
}

// ChargeCard charges the card; the gateway refuses cards ending in 0000.
type ChargeCard struct{}

// Kind implements fsm.Task.
func (ChargeCard) Kind() string { return "charge_card" }

// Run implements fsm.Task.
func (ChargeCard) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var trip Trip
	if err := tc.Input(&trip); err != nil {
		return fsm.Result{}, err
	}
	if strings.HasSuffix(trip.Card, "0000") {
		return fsm.Result{}, errors.New("payment gateway: card refused") // retried, then routed
	}
	return fsm.Next(Confirm), nil
}

// ConfirmBooking confirms the reserved, paid seat.
type ConfirmBooking struct{}

// Kind implements fsm.Task.
func (ConfirmBooking) Kind() string { return "confirm_booking" }

// Run implements fsm.Task.
func (ConfirmBooking) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(Booked, "confirmed"), nil
}

// ReleaseSeat is the compensation: it undoes the reservation and says why.
type ReleaseSeat struct{}

// Kind implements fsm.Task.
func (ReleaseSeat) Kind() string { return "release_seat" }

// Run implements fsm.Task.
func (ReleaseSeat) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var trip Trip
	if err := tc.Input(&trip); err != nil {
		return fsm.Result{}, err
	}
	seats.Lock()
	delete(seats.held, trip.Traveller)
	seats.Unlock()
	why := "unknown"
	var se *fsm.StateError
	if f := tc.Failure(); errors.As(f, &se) {
		why = fmt.Sprintf("%s failed after %d attempts", se.State, se.Attempt)
	}
	return fsm.NextWith(Cancelled, "seat released: "+why), nil
}

func workflow() *fsm.Workflow[Step] {
	return fsm.New[Step]("trip", Reserve).
		Register(Reserve, ReserveSeat{}).
		Register(Charge, ChargeCard{}, fsm.TaskConfig{Retry: fsm.RetryFixed(3, 10*time.Millisecond)}).
		OnFailure(Charge, Release). // a charge that fails for good releases the seat
		Register(Confirm, ConfirmBooking{}).
		Register(Release, ReleaseSeat{}).
		Exit(Booked, Cancelled)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[ReserveSeat](reg)
	fsm.Register[ChargeCard](reg)
	fsm.Register[ConfirmBooking](reg)
	fsm.Register[ReleaseSeat](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	for _, trip := range []Trip{{Traveller: "ada", Card: "4242424242424242"}, {Traveller: "grace", Card: "4000000000000000"}} {
		r, err := env.Client.Run(ctx, "trip", &client.TriggerOpts{Input: trip})
		if err != nil {
			return fmt.Errorf("trip of %s: %w", trip.Traveller, err)
		}
		var result string
		if err := r.Output(&result); err != nil {
			return err
		}
		seats.Lock()
		held := seats.held[trip.Traveller]
		seats.Unlock()
		fmt.Fprintf(out, "%s: %s (%s); seat held: %t\n", trip.Traveller, strings.Join(r.Path, " → "), result, held)
	}
	return nil
}
