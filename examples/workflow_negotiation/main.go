// Workflow_negotiation is a cycle with two exit states: a seller and a
// buyer take turns through the run's store, the seller lowering its price
// and the buyer raising its offer, until they meet (deal) or the buyer's
// budget runs out (no_deal).
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/worker"
)

// State is the workflow's state type.
type State string

// The states.
const (
	Seller State = "seller"
	Buyer  State = "buyer"
	Deal   State = "deal"
	NoDeal State = "no_deal"
)

// Terms are the run's input.
type Terms struct {
	Ask    int `msgpack:"ask"`    // the seller's first price
	Floor  int `msgpack:"floor"`  // the seller's lowest price
	Offer  int `msgpack:"offer"`  // the buyer's first offer
	Budget int `msgpack:"budget"` // the buyer's highest offer
}

// SellerTurn names a price: the first ask, then 10 % less each round, never
// below the floor. It accepts an offer at or above its price.
type SellerTurn struct{}

// Kind implements fsm.Task.
func (SellerTurn) Kind() string { return "seller_turn" }

// Run implements fsm.Task.
func (SellerTurn) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var t Terms
	if err := tc.Input(&t); err != nil {
		return fsm.Result{}, err
	}
	price, err := kvstore.GetAs[int](ctx, tc.Store, "price")
	if err != nil {
		price = t.Ask // the first round: nothing stored yet
	} else {
		price = max(t.Floor, price*9/10)
	}
	offer, err := kvstore.GetAs[int](ctx, tc.Store, "offer")
	if err == nil && offer >= price {
		return fsm.NextWith(Deal, fmt.Sprintf("deal at %d", offer)), nil
	}
	if err := kvstore.PutValue(ctx, tc.Store, "price", price); err != nil {
		return fsm.Result{}, err
	}
	return fsm.Next(Buyer), nil
}

// BuyerTurn raises its offer by 15 % each round up to its budget, accepts a
// price within budget, and walks away when the price stays above it after
// its best offer.
type BuyerTurn struct{}

// Kind implements fsm.Task.
func (BuyerTurn) Kind() string { return "buyer_turn" }

// Run implements fsm.Task.
func (BuyerTurn) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var t Terms
	if err := tc.Input(&t); err != nil {
		return fsm.Result{}, err
	}
	price, err := kvstore.GetAs[int](ctx, tc.Store, "price")
	if err != nil {
		return fsm.Result{}, err
	}
	if price <= t.Budget {
		return fsm.NextWith(Deal, fmt.Sprintf("deal at %d", price)), nil
	}
	offer, err := kvstore.GetAs[int](ctx, tc.Store, "offer")
	if err != nil {
		offer = t.Offer
	} else if offer == t.Budget {
		return fsm.NextWith(NoDeal, fmt.Sprintf("no deal: price %d, budget %d", price, t.Budget)), nil
	} else {
		offer = min(t.Budget, offer*115/100)
	}
	if err := kvstore.PutValue(ctx, tc.Store, "offer", offer); err != nil {
		return fsm.Result{}, err
	}
	return fsm.Next(Seller), nil
}

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("negotiation", Seller).
		Register(Seller, SellerTurn{}).
		Register(Buyer, BuyerTurn{}).
		Exit(Deal, NoDeal).
		MaxTransitions(100) // a runaway cycle fails clearly
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[SellerTurn](reg)
	fsm.Register[BuyerTurn](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	for _, t := range []Terms{
		{Ask: 1000, Floor: 600, Offer: 400, Budget: 700},
		{Ask: 1000, Floor: 800, Offer: 300, Budget: 500},
	} {
		r, err := env.Client.Run(ctx, "negotiation", &client.TriggerOpts{Input: t})
		if err != nil {
			return err
		}
		var result string
		if err := r.Output(&result); err != nil {
			return err
		}
		fmt.Fprintf(out, "ask %d (floor %d), offer %d (budget %d): %s after %d turns, ends in %s\n",
			t.Ask, t.Floor, t.Offer, t.Budget, result, len(r.Path)-1, r.State)
	}
	return nil
}
