// Command canobench measures Cano on a server (embedded by default) beside
// a raw JetStream baseline taken in the same run:
//
//	go run ./cmd/canobench                       # all scenarios
//	go run ./cmd/canobench -scenarios onetask,latency -n 20000 -json
//	go run ./cmd/canobench -procs -scenarios onetask,memory   # per-process CPU and RSS
//	go run ./cmd/canobench -procs -scenarios idle             # idle CPU: % of a core per process
//	go run ./cmd/canobench -soak 30m -rate 2000                # steady load, a row a minute
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/cano-nats/cano/internal/gcfloor"
	"github.com/cano-nats/cano/internal/version"
	"github.com/cano-nats/cano/internal/wire/bench"
)

func main() {
	// As cmd/coordinator and cmd/worker run (GOGC=100 in the environment
	// measures without it).
	gcfloor.Set()
	if len(os.Args) > 1 && os.Args[1] == bench.ChildArg {
		// An engine child of canobench -procs (internal).
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		code := bench.ChildMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	var cfg bench.Config
	fs := flag.NewFlagSet("canobench", flag.ExitOnError)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&cfg.URL, "s", "", "external NATS `url` (default: embedded server, R1 file storage, temp dir)")
	fs.IntVar(&cfg.Runs, "n", 20000, "runs for the one-task scenarios")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "run onetask, chain and floor this many times, each right after a baseline of its own, and report medians and the spread of the ratios")
	fs.IntVar(&cfg.Concurrency, "concurrency", 2000, "runs in flight at once")
	fs.IntVar(&cfg.LatencyRuns, "latency-n", 2000, "sequential runs for the latency scenario")
	fs.IntVar(&cfg.MemoryRuns, "memory-n", 200000, "runs for the memory scenario")
	scenarios := fs.String("scenarios", "onetask,chain,split,latency,breaker", "comma-separated: onetask, chain, split, latency, breaker, memory, idle, floor (the one-task protocol in bare nats.go: the most onetask can reach), timed (one-task runs with a total timeout: the moot timers left), backlog (runs waiting for a worker, then worked: only the working timed, as the job queues' own benchmarks measure)")
	fs.DurationVar(&cfg.IdleSettle, "idle-settle", bench.IdleSettleDefault, "idle: let start-up settle this long before measuring")
	fs.DurationVar(&cfg.IdleFor, "idle-for", bench.IdleForDefault, "idle: measure CPU over this long with no runs")
	splits := fs.String("splits", "100,1000,10000", "split sizes")
	asJSON := fs.Bool("json", false, "machine-readable output")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file` (with -procs, each child also writes file.worker and file.coordinator)")
	memProfile := fs.String("memprofile", "", "write a heap profile to `file` at the end")
	fs.BoolVar(&cfg.Processes, "procs", false, "run the worker and the coordinator as child processes: per-process RSS and CPU per run")
	soak := fs.Duration("soak", 0, "run one-task workflows at -rate for this `duration` and print, every -soak-every, runs/s, server RSS, the broker's stored bytes and messages, and the retained run records (by hand, not in CI)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "soak: one-task runs triggered per second (0: half the peak, measured first)")
	fs.DurationVar(&cfg.SoakEvery, "soak-every", bench.SoakEveryDefault, "soak: print a row this often")
	fs.BoolVar(&cfg.EventCapture, "event-capture", false, "provision the events capture stream, so the server stores every event (as coordinators started with -event-capture do)")
	fs.BoolVar(&cfg.StreamTriggers, "stream-triggers", false, "publish triggers to the triggers stream (as nats pub and the scheduler do) instead of sending them as requests (as client.Trigger does)")
	fs.DurationVar(&cfg.DeferStart, "defer-start", 0, "the coordinator's deferred-start mode: each run's record first written with its first result, or after this long (coordinator DeferStart; 0: off, the record written at the start)")
	fs.DurationVar(&cfg.RunRetention, "retention", 0, "how long finished run records are kept (coordinator RunRetention; 0: its default, 1h)")
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println(version.String())
		return
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "canobench:", err)
			os.Exit(2)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	cfg.CPUProfile = *cpuProfile
	cfg.Scenarios = strings.Split(*scenarios, ",")
	for _, s := range strings.Split(*splits, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "canobench: -splits:", err)
			os.Exit(2)
		}
		cfg.Splits = append(cfg.Splits, n)
	}
	cfg.Progress = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *soak > 0 {
		if err := bench.Soak(ctx, cfg, *soak, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "canobench:", err)
			os.Exit(1)
		}
		return
	}
	if *memProfile != "" {
		defer func() {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.WriteHeapProfile(f)
				_ = f.Close()
			}
		}()
	}
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		_ = bench.Print(os.Stdout, rep, *asJSON)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "canobench:", err)
		os.Exit(1)
	}
}
