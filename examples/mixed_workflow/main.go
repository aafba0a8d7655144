// Mixed_workflow mixes task states and a split in one workflow: validate
// an order (task), ask three warehouses for stock in parallel (split,
// joined when all have answered), then decide (task), which chooses one
// of two exits. Two orders take the two paths.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Validate  State = "validate"
	Stock     State = "stock"
	Decide    State = "decide"
	Confirmed State = "confirmed"
	Backorder State = "backorder"
)

// Order is the run input.
type Order struct {
	Item string `msgpack:"item"`
	Qty  int    `msgpack:"qty"`
}

// ValidateOrder refuses an empty order, then moves to the stock split.
type ValidateOrder struct{}

// Kind implements fsm.Task.
func (ValidateOrder) Kind() string { return "validate_order" }

// Run implements fsm.Task.
func (ValidateOrder) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var o Order
	if err := tc.Input(&o); err != nil {
		return fsm.Result{}, err
	}
	if o.Item == "" || o.Qty <= 0 {
		return fsm.Result{}, fsm.Permanent(errors.New("an order needs an item and a positive quantity"))
	}
	return fsm.Next(Stock), nil
}

// CheckWarehouse reports how many of the order's item one warehouse holds.
type CheckWarehouse struct {
	Name  string         `msgpack:"name"`
	Stock map[string]int `msgpack:"stock"`
}

// Kind implements fsm.Task.
func (CheckWarehouse) Kind() string { return "check_warehouse" }

// Run implements fsm.Task.
func (w CheckWarehouse) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var o Order
	if err := tc.Input(&o); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Decide, w.Stock[o.Item]), nil
}

// DecideOrder adds the warehouses' stock and confirms the order if it
// covers the quantity.
type DecideOrder struct{}

// Kind implements fsm.Task.
func (DecideOrder) Kind() string { return "decide_order" }

// Run implements fsm.Task.
func (DecideOrder) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var o Order
	if err := tc.Input(&o); err != nil {
		return fsm.Result{}, err
	}
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	total := 0
	for _, b := range branches {
		n, err := fsm.BranchOutput[int](b)
		if err != nil {
			return fsm.Result{}, err
		}
		total += n
	}
	if total >= o.Qty {
		return fsm.NextWith(Confirmed, fmt.Sprintf("%d %s in stock across the warehouses, %d reserved", total, o.Item, o.Qty)), nil
	}
	return fsm.NextWith(Backorder, fmt.Sprintf("only %d %s in stock, %d ordered", total, o.Item, o.Qty)), nil
}

func workflow() *fsm.Workflow[State] {
	warehouses := []fsm.Task{
		CheckWarehouse{Name: "north", Stock: map[string]int{"chair": 4, "desk": 1}},
		CheckWarehouse{Name: "south", Stock: map[string]int{"chair": 2}},
		CheckWarehouse{Name: "east", Stock: map[string]int{"chair": 3, "desk": 1}},
	}
	return fsm.New[State]("mixed", Validate).
		Register(Validate, ValidateOrder{}, fsm.Minimal()).
		RegisterSplit(Stock, warehouses, fsm.JoinConfig[State]{Strategy: join.All(), JoinState: Decide, Timeout: 10 * time.Second}).
		Register(Decide, DecideOrder{}).
		Exit(Confirmed, Backorder)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[ValidateOrder](reg)
	fsm.Register[CheckWarehouse](reg)
	fsm.Register[DecideOrder](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()
	for _, o := range []Order{{Item: "chair", Qty: 6}, {Item: "desk", Qty: 5}} {
		r, err := env.Client.Run(ctx, "mixed", &client.TriggerOpts{Input: o})
		if err != nil {
			return err
		}
		var note string
		if err := r.Output(&note); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d %s: %s via %s: %s\n", o.Qty, o.Item, r.State, strings.Join(r.Path, " → "), note)
	}
	_, err = env.Client.Run(ctx, "mixed", &client.TriggerOpts{Input: Order{Item: "lamp"}})
	if !errors.Is(err, fsm.ErrPermanent) {
		return fmt.Errorf("want an empty order refused, got %v", err)
	}
	fmt.Fprintf(out, "0 lamp: %v\n", err)
	return nil
}
