// Order is the README's "Defining a workflow" example, complete: an order is
// validated, then its card is charged with retries and a shared circuit
// breaker, and the run ends in done or rejected.
//
//	go run ./examples/order            # embedded NATS in a temporary directory
//	go run ./examples/order -s nats://127.0.0.1:4222
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// README:begin

type OrderState string

const (
	Validate OrderState = "validate"
	Charge   OrderState = "charge"
	Done     OrderState = "done"
	Rejected OrderState = "rejected"
)

type Order struct {
	ID     string `msgpack:"id"`
	Card   string `msgpack:"card"`
	Amount int    `msgpack:"amount"` // cents
}

type ValidateOrder struct{}

func (ValidateOrder) Kind() string { return "validate_order" }

func (ValidateOrder) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var order Order
	if err := tc.Input(&order); err != nil {
		return fsm.Result{}, err // already fsm.Permanent: a bad input is not retried
	}
	if order.Amount <= 0 || order.Card == "" {
		return fsm.NextWith(Rejected, "invalid order"), nil
	}
	return fsm.Next(Charge), nil
}

type ChargeCard struct {
	Gateway string `msgpack:"gateway"`
}

func (ChargeCard) Kind() string { return "charge_card" }

func (c ChargeCard) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var order Order
	if err := tc.Input(&order); err != nil {
		return fsm.Result{}, err
	}
	if err := charge(ctx, c.Gateway, order); errors.Is(err, errDeclined) {
		return fsm.NextWith(Rejected, "card declined"), nil
	} else if err != nil {
		return fsm.Result{}, err // retried with exponential backoff
	}
	return fsm.NextWith(Done, order.ID), nil
}

func orderWorkflow() *fsm.Workflow[OrderState] {
	return fsm.New[OrderState]("order", Validate).
		Register(Validate, ValidateOrder{}).
		Register(Charge, ChargeCard{Gateway: "stripe"}, fsm.TaskConfig{
			Retry:          fsm.RetryExponential(5),
			AttemptTimeout: 10 * time.Second,
			Breaker:        "payments", // one breaker shared by every worker
		}).
		Exit(Done, Rejected).
		TotalTimeout(time.Minute)
}

// startWorker hosts the order workflow's tasks in this process. The
// streams and buckets must exist first: the coordinator binary creates them
// when it starts (here, local.Start does), or call provision.Ensure(ctx, js,
// provision.Config{}) or set worker.Config.Provision.
func startWorker(ctx context.Context, nc *nats.Conn) (*worker.Worker, error) {
	reg := &fsm.Registry{}
	fsm.Register[ValidateOrder](reg)
	fsm.Register[ChargeCard](reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{orderWorkflow()}})
	if err != nil {
		return nil, err
	}
	return w, w.Start(ctx)
}

// placeOrder runs the workflow for one order and waits for its end.
func placeOrder(ctx context.Context, cl *client.Client, order Order) (*client.Run, error) {
	return cl.Run(ctx, "order", &client.TriggerOpts{Input: order, IdempotencyKey: order.ID})
	// The error matches fsm.ErrRetryExhausted, fsm.ErrCircuitOpen,
	// fsm.ErrWorkflowTimeout, ... with errors.Is, and carries
	// *fsm.StateError{State, Attempt, Path}.
}

// README:end

// errDeclined is the simulated gateway's refusal of a card.
var errDeclined = errors.New("card declined")

// gateway simulates a card processor: cards ending in 0002 are declined,
// and a card ending in 0119 times out once before it goes through.
var gateway = struct {
	sync.Mutex
	calls map[string]int
}{calls: map[string]int{}}

func charge(ctx context.Context, name string, order Order) error {
	gateway.Lock()
	gateway.calls[order.ID]++
	calls := gateway.calls[order.ID]
	gateway.Unlock()
	switch {
	case strings.HasSuffix(order.Card, "0002"):
		return errDeclined
	case strings.HasSuffix(order.Card, "0119") && calls == 1:
		return fmt.Errorf("%s: gateway timeout, try again", name)
	}
	return ctx.Err()
}

// calls reports how often the gateway was called for an order.
func calls(orderID string) int {
	gateway.Lock()
	defer gateway.Unlock()
	return gateway.calls[orderID]
}

func main() { local.Main(run) }

// run places three orders — one that goes through after a retry, one with
// a declined card, one invalid — and prints how each ended.
func run(ctx context.Context, out io.Writer, url string) error {
	env, err := local.Start(ctx, local.Options{URL: url, NoWorker: true})
	if err != nil {
		return err
	}
	defer env.Close()
	w, err := startWorker(ctx, env.NC)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop(context.Background()) }()

	suffix := fmt.Sprintf("-%d", time.Now().UnixNano()) // fresh idempotency keys on a shared server
	orders := []Order{
		{ID: "A-1" + suffix, Card: "4242-4242-4242-0119", Amount: 1999},
		{ID: "A-2" + suffix, Card: "4000-0000-0000-0002", Amount: 500},
		{ID: "A-3" + suffix, Card: "", Amount: 700},
	}
	for _, order := range orders {
		r, err := placeOrder(ctx, env.Client, order)
		if err != nil {
			return fmt.Errorf("order %s: %w", order.ID, err)
		}
		var note string
		if err := r.Output(&note); err != nil {
			return err
		}
		fmt.Fprintf(out, "order %s: %s via %s (%s), gateway calls: %d\n",
			strings.TrimSuffix(order.ID, suffix), r.Status, strings.Join(r.Path, " → "), strings.TrimSuffix(note, suffix), calls(order.ID))
	}
	return nil
}
