// Workflow_ad_exchange runs an ad auction with three split points, each
// joined with its own strategy and timeout: the user's profile and the
// page's context signals are fetched together (All, 2 s); four bidders are
// asked for a bid (PartialResults(3), 5 s: the slow bidder misses the
// auction and is cancelled); the winner is notified and billed together
// (All, 2 s). A bid below the floor price ends the run in the second exit
// state, rejected.
package main

import (
	"context"
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
	Enrich   State = "enrich"
	Auction  State = "auction"
	Pick     State = "pick"
	Record   State = "record"
	Complete State = "complete"
	Rejected State = "rejected"
)

// Request is the run's input: the user, the page and the floor price in
// cents.
type Request struct {
	User  string `msgpack:"user"`
	Page  string `msgpack:"page"`
	Floor int    `msgpack:"floor"`
}

// Report is the run's output: a line per split point and the result.
type Report struct {
	Lines  []string `msgpack:"lines"`
	Result string   `msgpack:"result"`
}

// FetchProfile looks up the user's (simulated) interest segment.
type FetchProfile struct{}

// Kind implements fsm.Task.
func (FetchProfile) Kind() string { return "fetch_profile" }

// Run implements fsm.Task.
func (FetchProfile) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var req Request
	if err := tc.Input(&req); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Auction, "segment="+map[string]string{"ana": "cyclist", "bo": "gardener"}[req.User]), nil
}

// ContextSignals classifies the page.
type ContextSignals struct{}

// Kind implements fsm.Task.
func (ContextSignals) Kind() string { return "context_signals" }

// Run implements fsm.Task.
func (ContextSignals) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var req Request
	if err := tc.Input(&req); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(Auction, "topic="+strings.SplitN(req.Page, "/", 2)[0]), nil
}

// StartAuction joins the enrichment and asks every bidder for a bid.
type StartAuction struct{}

// Kind implements fsm.Task.
func (StartAuction) Kind() string { return "start_auction" }

// Run implements fsm.Task.
func (StartAuction) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	var signals, seen []string
	for _, b := range branches {
		s, err := fsm.BranchOutput[string](b)
		if err != nil {
			return fsm.Result{}, err
		}
		signals = append(signals, s)
		seen = append(seen, fmt.Sprintf("%s %s", []string{"profile", "signals"}[b.Index], b.Status))
	}
	line := fmt.Sprintf("enrich (%s, 2s): %s → %s", join.All(), strings.Join(seen, ", "), strings.Join(signals, " "))
	tasks := make([]fsm.Task, len(bidders))
	for i, b := range bidders {
		b.Signals = signals
		b.Lines = []string{line}
		tasks[i] = b
	}
	return fsm.SplitInto(fsm.JoinConfig[State]{Strategy: bidStrategy, JoinState: Pick, Timeout: 5 * time.Second}, tasks...), nil
}

// bidStrategy joins the bids: the auction closes at the third bid.
var bidStrategy = join.PartialResults(3)

// Bid is one bidder's answer, in cents.
type Bid struct {
	Bidder string   `msgpack:"bidder"`
	Cents  int      `msgpack:"cents"`
	Lines  []string `msgpack:"lines"`
}

// Bidder bids Base cents, more for a cyclist, after Delay.
type Bidder struct {
	Name    string        `msgpack:"name"`
	Base    int           `msgpack:"base"`
	Delay   time.Duration `msgpack:"delay"`
	Signals []string      `msgpack:"signals"`
	Lines   []string      `msgpack:"lines"`
}

// bidders are asked in this order; dsp-slow answers long after the auction
// closed.
var bidders = []Bidder{
	{Name: "dsp-north", Base: 120, Delay: 20 * time.Millisecond},
	{Name: "dsp-east", Base: 95, Delay: 40 * time.Millisecond},
	{Name: "dsp-west", Base: 150},
	{Name: "dsp-slow", Base: 900, Delay: time.Minute},
}

// Kind implements fsm.Task.
func (Bidder) Kind() string { return "bidder" }

// Run implements fsm.Task.
func (b Bidder) Run(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(b.Delay):
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
	cents := b.Base
	for _, s := range b.Signals {
		if s == "segment=cyclist" {
			cents += 60
		}
	}
	return fsm.NextWith(Pick, Bid{Bidder: b.Name, Cents: cents, Lines: b.Lines}), nil
}

// PickWinner takes the highest bid; at or above the floor it notifies and
// bills the winner, below it rejects the auction.
type PickWinner struct{}

// Kind implements fsm.Task.
func (PickWinner) Kind() string { return "pick_winner" }

// Run implements fsm.Task.
func (PickWinner) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var req Request
	if err := tc.Input(&req); err != nil {
		return fsm.Result{}, err
	}
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	var best Bid
	var lines, seen []string
	for _, b := range branches {
		bid, err := fsm.BranchOutput[Bid](b)
		if err != nil {
			seen = append(seen, fmt.Sprintf("%s %s", bidders[b.Index].Name, b.Status))
			continue
		}
		lines = bid.Lines
		seen = append(seen, fmt.Sprintf("%s %s %s", bid.Bidder, b.Status, cents(bid.Cents)))
		if bid.Cents > best.Cents {
			best = bid
		}
	}
	lines = append(lines, fmt.Sprintf("bids (%s, 5s): %s", bidStrategy, strings.Join(seen, ", ")))
	if best.Cents < req.Floor {
		return fsm.NextWith(Rejected, Report{Lines: lines,
			Result: fmt.Sprintf("no bid reached the floor of %s (best %s)", cents(req.Floor), cents(best.Cents))}), nil
	}
	best.Lines = lines
	return fsm.SplitInto(fsm.JoinConfig[State]{Strategy: join.All(), JoinState: Record, Timeout: 2 * time.Second},
		Notify{Win: best}, Bill{Win: best}), nil
}

// Notify tells the winner it won.
type Notify struct {
	Win Bid `msgpack:"win"`
}

// Kind implements fsm.Task.
func (Notify) Kind() string { return "notify_winner" }

// Run implements fsm.Task.
func (n Notify) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(Record, n.Win), nil
}

// Bill charges the winner.
type Bill struct {
	Win Bid `msgpack:"win"`
}

// Kind implements fsm.Task.
func (Bill) Kind() string { return "bill_winner" }

// Run implements fsm.Task.
func (b Bill) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(Record, b.Win), nil
}

// RecordWin joins the notification and the billing into the report.
type RecordWin struct{}

// Kind implements fsm.Task.
func (RecordWin) Kind() string { return "record_win" }

// Run implements fsm.Task.
func (RecordWin) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	branches, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	var win Bid
	var seen []string
	for _, b := range branches {
		if win, err = fsm.BranchOutput[Bid](b); err != nil {
			return fsm.Result{}, err
		}
		seen = append(seen, fmt.Sprintf("%s %s", []string{"notify", "bill"}[b.Index], b.Status))
	}
	lines := append(win.Lines, fmt.Sprintf("settle (%s, 2s): %s", join.All(), strings.Join(seen, ", ")))
	return fsm.NextWith(Complete, Report{Lines: lines, Result: fmt.Sprintf("%s wins at %s", win.Bidder, cents(win.Cents))}), nil
}

func cents(c int) string { return fmt.Sprintf("$%d.%02d", c/100, c%100) }

func workflow() *fsm.Workflow[State] {
	return fsm.New[State]("ad_exchange", Enrich).
		RegisterSplit(Enrich, []fsm.Task{FetchProfile{}, ContextSignals{}},
			fsm.JoinConfig[State]{Strategy: join.All(), JoinState: Auction, Timeout: 2 * time.Second}).
		Register(Auction, StartAuction{}).
		Register(Pick, PickWinner{}).
		Register(Record, RecordWin{}).
		Exit(Complete).
		Exit(Rejected)
}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	reg := &fsm.Registry{}
	fsm.Register[FetchProfile](reg)
	fsm.Register[ContextSignals](reg)
	fsm.Register[StartAuction](reg)
	fsm.Register[Bidder](reg)
	fsm.Register[PickWinner](reg)
	fsm.Register[Notify](reg)
	fsm.Register[Bill](reg)
	fsm.Register[RecordWin](reg)
	env, err := local.Start(ctx, local.Options{URL: url, Registry: reg, Workflows: []worker.Definer{workflow()}})
	if err != nil {
		return err
	}
	defer env.Close()

	for _, req := range []Request{
		{User: "ana", Page: "sport/tour-de-france", Floor: 100},
		{User: "bo", Page: "news/weather", Floor: 200},
	} {
		r, err := env.Client.Run(ctx, "ad_exchange", &client.TriggerOpts{Input: req})
		if err != nil {
			return err
		}
		var rep Report
		if err := r.Output(&rep); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s on %s, floor %s: %s via %s: %s\n", req.User, req.Page, cents(req.Floor),
			r.Status, strings.Join(r.Path, " → "), rep.Result)
		for _, l := range rep.Lines {
			fmt.Fprintln(out, "  "+l)
		}
	}
	return nil
}
