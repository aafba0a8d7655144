// Command peerbench measures the job queues a user would pick instead of Cano — asynq on Redis
// and River on PostgreSQL — on this machine, doing what canobench's one-task scenario does: N
// no-op jobs, each inserted by its own call with many calls in flight, worked as they arrive,
// timed from the first insert to the last job recorded as done. It also runs each peer the way
// its own benchmark does (jobs inserted first, only the working timed; River inserts in batches
// of 5,000), which gives it its best figure.
//
// It starts its own redis-server and PostgreSQL (from PATH) on loopback ports in a temporary
// directory, and reports jobs/s and the CPU spent per job by its own process and the server's
// processes together, so the figures sit beside canobench's (which also counts its embedded
// server). It is a module of its own so that Cano's module does not depend on either peer.
//
//	cd internal/tools/peerbench && go run . -n 20000 -rounds 3
//
// See docs/benchmarks.md ("Against the peers") for the figures and how to read them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	n          int
	inFlight   int
	rounds     int
	peers      []string
	modes      []string
	durability string
	asynqConc  int
	riverMax   int
	pgConns    int
	keep       bool
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("peerbench", flag.ContinueOnError)
	var o options
	var peers, modes string
	fs.IntVar(&o.n, "n", 20000, "jobs per round")
	fs.IntVar(&o.inFlight, "in-flight", 200, "insert calls in flight in the e2e mode (the best of 50, 200 and 2,000 for both peers here; canobench's onetask keeps 2,000 runs in flight)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of each peer and mode; the median is reported")
	fs.StringVar(&peers, "peers", "asynq,river", "peers to measure: asynq, river")
	fs.StringVar(&modes, "modes", "e2e,bulk,drain", "e2e: insert and work at once, one job per insert call; bulk: insert and work at once, River inserting in batches of 5,000 (asynq has no batch insert: skipped); drain: insert first (River in batches), time only the working")
	fs.StringVar(&o.durability, "durability", "os", "os: every acknowledged write is handed to the OS before the answer, as an R1 file stream of NATS does (Redis appendonly with appendfsync no; PostgreSQL fsync off); default: each server's own defaults (Redis snapshots only; PostgreSQL fsyncs each commit)")
	fs.IntVar(&o.asynqConc, "asynq-concurrency", 100, "asynq server Concurrency (its own benchmark uses 10)")
	fs.IntVar(&o.riverMax, "river-max-workers", 2000, "River MaxWorkers (its own benchmark's value)")
	fs.IntVar(&o.pgConns, "pg-conns", 40, "connections in the pgx pool River uses")
	fs.BoolVar(&o.keep, "keep", false, "keep the servers' temporary directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.peers = strings.Split(peers, ",")
	o.modes = strings.Split(modes, ",")
	for _, p := range o.peers {
		if p != "asynq" && p != "river" {
			return fmt.Errorf("unknown peer %q: pass -peers asynq,river or one of them", p)
		}
	}
	for _, m := range o.modes {
		if m != "e2e" && m != "bulk" && m != "drain" {
			return fmt.Errorf("unknown mode %q: pass -modes e2e,bulk,drain or some of them", m)
		}
	}
	if o.durability != "os" && o.durability != "default" {
		return fmt.Errorf("unknown durability %q: pass -durability os or -durability default", o.durability)
	}

	dir, err := os.MkdirTemp("", "peerbench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(out, "servers' directory:", dir)
	} else {
		defer func() { _ = os.RemoveAll(dir) }()
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	fmt.Fprintf(out, "machine:    %s\n", machine())
	fmt.Fprintf(out, "jobs:       %d per round, %d rounds, durability %s\n", o.n, o.rounds, o.durability)
	for _, p := range o.peers {
		var b peer
		switch p {
		case "asynq":
			b, err = startAsynq(ctx, dir, o)
		case "river":
			b, err = startRiver(ctx, dir, o)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintf(out, "%-6s      %s\n", p, b.describe())
		for _, m := range o.modes {
			if m == "bulk" && p == "asynq" {
				continue // no batch insert
			}
			var rs []result
			for range o.rounds {
				if err := b.reset(ctx); err != nil {
					b.close()
					return fmt.Errorf("%s: reset: %w", p, err)
				}
				r, err := measure(ctx, b, m, o)
				if err != nil {
					b.close()
					return fmt.Errorf("%s %s: %w", p, m, err)
				}
				rs = append(rs, r)
			}
			report(out, p, m, rs)
		}
		b.close()
	}
	return nil
}

// peer is one job queue with its server running.
type peer interface {
	describe() string
	// reset empties the queue before a round.
	reset(ctx context.Context) error
	// serverPID is the server process whose CPU (and its children's) counts beside ours.
	serverPID() int
	// insert inserts job i by one call.
	insert(ctx context.Context, i int) error
	// insertAll inserts n jobs the fastest way the peer offers.
	insertAll(ctx context.Context, n int) error
	// work starts working jobs; done receives one value per job recorded as done. stop stops it.
	work(ctx context.Context, done chan<- struct{}) (stop func(), err error)
	// settled reports whether the server holds no job waiting or running.
	settled(ctx context.Context) (bool, error)
	close()
}

// result is one round's figures.
type result struct {
	jobsPerS  float64
	cpuPerJob time.Duration
}

func measure(ctx context.Context, b peer, mode string, o options) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	done := make(chan struct{}, o.n)

	if mode == "drain" {
		if err := b.insertAll(ctx, o.n); err != nil {
			return result{}, fmt.Errorf("insert: %w", err)
		}
	}
	cpu0 := cpuOf(b.serverPID())
	start := time.Now()
	stop, err := b.work(ctx, done)
	if err != nil {
		return result{}, err
	}
	defer stop()
	errs := make(chan error, 1)
	switch mode {
	case "e2e":
		go func() { errs <- insertConcurrently(ctx, b, o.n, o.inFlight) }()
	case "bulk":
		go func() { errs <- b.insertAll(ctx, o.n) }()
	}
	for got := 0; got < o.n; {
		select {
		case <-done:
			got++
		case err := <-errs:
			if err != nil {
				return result{}, fmt.Errorf("insert: %w", err)
			}
			errs = nil // every job is in; a nil channel is never ready
		case <-ctx.Done():
			return result{}, fmt.Errorf("timed out with %d of %d jobs done", got, o.n)
		}
	}
	// A job counted by its handler may still be on its way to being recorded as done.
	for {
		ok, err := b.settled(ctx)
		if err != nil {
			return result{}, err
		}
		if ok {
			break
		}
		if ctx.Err() != nil {
			return result{}, errors.New("timed out waiting for the queue to settle")
		}
		time.Sleep(time.Millisecond) // polling the server; bounded by ctx
	}
	elapsed := time.Since(start)
	cpu := cpuOf(b.serverPID()) - cpu0
	return result{
		jobsPerS:  float64(o.n) / elapsed.Seconds(),
		cpuPerJob: cpu / time.Duration(o.n),
	}, nil
}

// insertConcurrently inserts n jobs, one per call, with inFlight calls at once.
func insertConcurrently(ctx context.Context, b peer, n, inFlight int) error {
	next := make(chan int, inFlight)
	errs := make(chan error, inFlight)
	for range inFlight {
		go func() {
			var first error
			for i := range next {
				if err := b.insert(ctx, i); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	var first error
	for range inFlight {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func report(out io.Writer, p, mode string, rs []result) {
	rates := make([]float64, len(rs))
	cpus := make([]time.Duration, len(rs))
	for i, r := range rs {
		rates[i], cpus[i] = r.jobsPerS, r.cpuPerJob
	}
	slices.Sort(rates)
	slices.Sort(cpus)
	fmt.Fprintf(out, "%-6s %-5s jobs_per_s %8.0f (rounds %.0f–%.0f)   cpu_us_per_job %6.1f (rounds %.1f–%.1f)\n",
		p, mode, rates[len(rates)/2], rates[0], rates[len(rates)-1],
		us(cpus[len(cpus)/2]), us(cpus[0]), us(cpus[len(cpus)-1]))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
