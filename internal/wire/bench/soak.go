package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Soak defaults.
const (
	// SoakPeakRuns is how many one-task runs measure the peak rate when
	// Config.Rate is 0; the soak then runs at half of it.
	SoakPeakRuns = 5_000
	// SoakEveryDefault is how often a soak row is printed.
	SoakEveryDefault = time.Minute
	// soakTick is the pacing step of the trigger loop.
	soakTick = 10 * time.Millisecond
)

// Soak runs one-task workflows at a steady rate (Config.Rate, or half the
// measured peak) for d, and prints a row every Config.SoakEvery: runs/s
// completed, the server's RSS (this process: the embedded server, plus
// the engine unless Config.Processes runs it in children, whose RSS is
// shown too), the bytes and messages the broker stores over every stream
// and bucket, and the run records the runs bucket retains. Runs that
// cannot start because Config.Concurrency are already in flight are
// counted as "behind". Run it by hand, not in CI.
func Soak(ctx context.Context, cfg Config, d time.Duration, w io.Writer) error {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 2_000
	}
	if cfg.SoakEvery <= 0 {
		cfg.SoakEvery = SoakEveryDefault
	}
	cfg.Progress = io.Discard
	e, err := start(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.stop()
	runtime.GC()
	fmt.Fprintf(w, "soak %s on %s\n", d, machine())
	rate := cfg.Rate
	if rate <= 0 {
		l, err := e.drive(ctx, "peak", demo.OneTaskName, SoakPeakRuns)
		if err != nil {
			return fmt.Errorf("measure the peak: %w", err)
		}
		peak := float64(SoakPeakRuns) / l.took.Seconds()
		rate = peak / 2
		fmt.Fprintf(w, "peak %.0f runs/s (%d one-task runs); soaking at half: %.0f runs/s\n", peak, SoakPeakRuns, rate)
	} else {
		fmt.Fprintf(w, "soaking at %.0f runs/s (-rate)\n", rate)
	}
	fmt.Fprintln(w, soakHeader(len(e.procs) > 0))
	row := func(elapsed time.Duration, runsPerS float64, behind int64) {
		fmt.Fprintln(w, e.soakRow(ctx, elapsed, runsPerS, behind))
	}
	row(0, 0, 0)

	var completed, behind atomic.Int64
	inFlight := make(chan struct{}, cfg.Concurrency)
	sub, err := e.nc.Subscribe(protocol.MustNames("").EventSubject(demo.OneTaskName, "*", protocol.EventCompleted), func(*nats.Msg) {
		select {
		case <-inFlight:
		default:
		}
		completed.Add(1)
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()

	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	pubErr := make(chan error, 1)
	go func() { pubErr <- e.pace(sctx, rate, inFlight, &behind) }()

	begin := time.Now()
	tick := time.NewTicker(cfg.SoakEvery)
	defer tick.Stop()
	last, lastAt := int64(0), begin
	for done := false; !done; {
		select {
		case <-sctx.Done():
			done = true
		case <-tick.C:
		}
		now := time.Now()
		if now.Sub(lastAt) < cfg.SoakEvery/10 {
			continue // the end fell just after a row
		}
		c := completed.Load()
		row(now.Sub(begin).Round(time.Second), float64(c-last)/now.Sub(lastAt).Seconds(), behind.Swap(0))
		last, lastAt = c, now
	}
	if err := <-pubErr; err != nil && ctx.Err() == nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	runtime.GC()
	fmt.Fprintf(w, "%d runs completed in %s (%.0f runs/s); RSS at the end %.1f MB\n",
		completed.Load(), d, float64(completed.Load())/d.Seconds(), rssMB())
	return nil
}

// pace publishes one-task triggers at rate per second until ctx ends, at
// most cap(inFlight) runs in flight; a run it cannot start for that is
// counted in behind and not made up later.
func (e *env) pace(ctx context.Context, rate float64, inFlight chan struct{}, behind *atomic.Int64) error {
	js, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	base := "s" + strconv.FormatInt(time.Now().UnixNano(), 36) + "x"
	t := time.NewTicker(soakTick)
	defer t.Stop()
	owed, n := 0.0, 0
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			owed += rate * now.Sub(last).Seconds()
			last = now
		}
		for ; owed >= 1; owed-- {
			select {
			case inFlight <- struct{}{}:
			default:
				behind.Add(1)
				continue
			}
			id := base + strconv.Itoa(n)
			n++
			data, _ := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.OneTaskName, RunID: id})
			msg := &nats.Msg{Subject: protocol.MustNames("").TriggerSubject(demo.OneTaskName), Data: data, Header: nats.Header{}}
			msg.Header.Set(jetstream.MsgIDHeader, "trig:"+id)
			if _, err := js.PublishMsgAsync(msg); err != nil {
				return err
			}
		}
	}
}

func soakHeader(procs bool) string {
	cols := []string{fmt.Sprintf("%8s", "elapsed"), fmt.Sprintf("%9s", "runs/s"), fmt.Sprintf("%8s", "behind"),
		fmt.Sprintf("%10s", "server_mb")}
	if procs {
		cols = append(cols, fmt.Sprintf("%10s", "worker_mb"), fmt.Sprintf("%10s", "coord_mb"))
	}
	cols = append(cols, fmt.Sprintf("%10s", "stored_mb"), fmt.Sprintf("%12s", "stored_msgs"),
		fmt.Sprintf("%12s", "runs_kept"))
	return strings.Join(cols, " ")
}

// soakRow is one line under soakHeader.
func (e *env) soakRow(ctx context.Context, elapsed time.Duration, runsPerS float64, behind int64) string {
	cols := []string{fmt.Sprintf("%8s", elapsed), fmt.Sprintf("%9.0f", runsPerS), fmt.Sprintf("%8d", behind),
		fmt.Sprintf("%10.1f", rssMB())}
	for _, p := range e.procs {
		cols = append(cols, fmt.Sprintf("%10.1f", p.rssMB()))
	}
	st, err := e.brokerStats(ctx)
	if err != nil {
		return strings.Join(cols, " ") + "  (stream info: " + err.Error() + ")"
	}
	cols = append(cols, fmt.Sprintf("%10.1f", float64(st.bytes)/(1<<20)), fmt.Sprintf("%12d", st.msgs),
		fmt.Sprintf("%12d", st.runs))
	return strings.Join(cols, " ")
}

// brokerUse is what the broker stores over every stream and bucket.
type brokerUse struct {
	bytes, msgs uint64
	// runs is the run records the runs bucket retains (its messages:
	// one per run with history 1).
	runs uint64
}

func (e *env) brokerStats(ctx context.Context) (brokerUse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var u brokerUse
	runs := "KV_" + layout.RunsBucket(protocol.MustNames(""))
	l := e.js.ListStreams(ctx)
	for info := range l.Info() {
		u.bytes += info.State.Bytes
		u.msgs += info.State.Msgs
		if info.Config.Name == runs {
			u.runs = info.State.Msgs
		}
	}
	return u, l.Err()
}
