// Package bench is the benchmark harness behind cmd/canobench: it runs the
// engine (coordinator and worker in this process) against an embedded or
// external NATS server and measures each scenario beside a raw JetStream
// publish+consume+ack baseline taken in the same run, so the figures are
// ratios, not noise.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// Config is what canobench's flags fill in.
type Config struct {
	// URL of an external server; "" starts an embedded one (R1, file
	// storage, data in a temp dir).
	URL string
	// Runs is N for the one-task scenarios (default 20,000).
	Runs int
	// Rounds, when more than 1, runs each throughput scenario (onetask,
	// chain, floor, backlog) that many times, each round right after a baseline of its
	// own, and reports each figure's median over the rounds with the
	// spread of the per-round ratios (ratio_min, ratio_median, ratio_max):
	// a baseline measured once, minutes before a scenario, drifts with the
	// machine's neighbours.
	Rounds int
	// Concurrency is how many runs are in flight at once (default 2,000).
	Concurrency int
	// LatencyRuns is how many sequential runs the latency scenario makes.
	LatencyRuns int
	// Splits are the split sizes measured.
	Splits []int
	// Scenarios to run: onetask, chain, split, latency, breaker, memory,
	// idle, floor, timed, backlog.
	Scenarios []string
	// IdleSettle is how long the idle scenario lets start-up settle
	// before it measures (default IdleSettleDefault); IdleFor is how long
	// it measures (default IdleForDefault).
	IdleSettle, IdleFor time.Duration
	// MemoryRuns is how many runs the memory scenario completes (RSS is
	// reported after 10k and after MemoryRuns).
	MemoryRuns int
	// Progress receives a progress line while a scenario runs.
	Progress io.Writer
	// Processes runs the worker and the coordinator as child processes
	// (this binary re-executed with -child), so each one's RSS and CPU
	// time is its own and the server's is this process's.
	Processes bool
	// CPUProfile, with Processes, makes each child write a CPU profile to
	// CPUProfile.<role>.
	CPUProfile string
	// Rate is the soak's one-task runs triggered per second; 0 measures
	// the peak first (SoakPeakRuns runs) and uses half of it.
	Rate float64
	// SoakEvery is how often the soak prints a row. Defaults to a minute.
	SoakEvery time.Duration
	// RunRetention is the coordinator's run-record retention
	// (coordinator.Config.RunRetention); 0 keeps its default.
	RunRetention time.Duration
	// DeferStart is the coordinator's deferred-start mode
	// (coordinator.Config.DeferStart); 0 writes each record at the start.
	DeferStart time.Duration
	// EventCapture provisions the events capture stream
	// (provision.Config.EventCapture), so the server stores every event
	// as a deployment with -event-capture does. Off by default, as in
	// production.
	EventCapture bool
	// StreamTriggers publishes the triggers to the triggers stream (as
	// `nats pub` and the scheduler do) instead of sending them as requests
	// (protocol.Names.RPCTriggerSubject, as client.Trigger does).
	StreamTriggers bool
}

// Result is one scenario's figures.
type Result struct {
	Scenario string             `json:"scenario"`
	Figures  map[string]float64 `json:"figures"`
	Baseline float64            `json:"baseline_msgs_per_s"`
	Note     string             `json:"note,omitempty"`
}

// Report is a whole run.
type Report struct {
	Machine  string   `json:"machine"`
	Server   string   `json:"server"`
	Baseline float64  `json:"baseline_msgs_per_s"`
	Results  []Result `json:"results"`
}

type env struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	client *client.Client
	procs  []*child // with Config.Processes: the worker and the coordinator
	stop   func()
}

// Run runs the configured scenarios.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Runs == 0 {
		cfg.Runs = 20_000
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 2_000
	}
	if cfg.LatencyRuns == 0 {
		cfg.LatencyRuns = 2_000
	}
	if len(cfg.Splits) == 0 {
		cfg.Splits = []int{100, 1_000, 10_000}
	}
	if cfg.MemoryRuns == 0 {
		cfg.MemoryRuns = 200_000
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	rep := &Report{Machine: machine(), Server: "embedded R1 file storage"}
	if cfg.URL != "" {
		rep.Server = cfg.URL
	}
	// The idle scenario has a server and engine processes of its own, and
	// runs first, so nothing else is connected or running while it
	// measures.
	var loaded []string
	for _, sc := range cfg.Scenarios {
		if sc != "idle" {
			loaded = append(loaded, sc)
			continue
		}
		r, err := idle(ctx, cfg)
		if err != nil {
			return rep, fmt.Errorf("idle: %w", err)
		}
		rep.Results = append(rep.Results, r)
	}
	if len(loaded) == 0 {
		return rep, nil
	}
	cfg.Scenarios = loaded
	e, err := start(ctx, cfg)
	if err != nil {
		return rep, err
	}
	defer e.stop()
	rep.Baseline, err = e.baseline(ctx, cfg.Runs)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	for _, sc := range cfg.Scenarios {
		var r Result
		switch sc {
		case "onetask":
			r, err = e.rounds(ctx, "runs_per_s", func() (Result, error) {
				return e.throughput(ctx, "onetask", demo.OneTaskName, cfg.Runs, 1)
			})
		case "chain":
			r, err = e.rounds(ctx, "transitions_per_s", func() (Result, error) {
				return e.throughput(ctx, "chain", demo.ChainName, cfg.Runs/10, 11)
			})
		case "floor":
			r, err = e.rounds(ctx, "runs_per_s", func() (Result, error) { return e.floor(ctx) })
		case "breaker":
			r, err = e.breakerOverhead(ctx)
		case "split":
			r, err = e.splits(ctx)
		case "latency":
			r, err = e.latency(ctx)
		case "timed":
			r, err = e.timed(ctx)
		case "memory":
			r, err = e.memory(ctx)
		case "backlog":
			r, err = e.rounds(ctx, "runs_per_s", func() (Result, error) { return e.backlog(ctx) })
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			return rep, fmt.Errorf("%s: %w", sc, err)
		}
		if r.Baseline == 0 { // not measured in rounds of its own
			r.Baseline = rep.Baseline
		}
		rep.Results = append(rep.Results, r)
	}
	return rep, nil
}

// Bench workflows beyond the demo's.
const (
	breakerWorkflow = "one_task_breaker"
	timedWorkflow   = "one_task_timed"
)

func splitWorkflow(n int) *fsm.Workflow[string] {
	tasks := make([]fsm.Task, n)
	for i := range tasks {
		tasks[i] = demo.Noop{Next: "done"}
	}
	return fsm.New[string]("split_"+strconv.Itoa(n), "split").
		RegisterSplit("split", tasks, fsm.JoinConfig[string]{Strategy: join.All(), JoinState: "done"}).Exit("done")
}

func start(ctx context.Context, cfg Config) (*env, error) {
	e := &env{cfg: cfg}
	var stops []func()
	e.stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	url, stopServer, err := startServer(cfg.URL)
	if err != nil {
		return nil, err
	}
	stops = append(stops, stopServer)
	nc, err := nats.Connect(url)
	if err != nil {
		e.stop()
		return nil, err
	}
	stops = append(stops, nc.Close)
	e.nc = nc
	e.js, _ = jetstream.New(nc)
	if err := provision.Ensure(ctx, e.js, provision.Config{EventCapture: cfg.EventCapture}); err != nil {
		e.stop()
		return nil, err
	}
	if cfg.Processes {
		for _, role := range []string{RoleWorker, RoleCoordinator} {
			p, err := startChild(ctx, role, url, cfg)
			if err != nil {
				e.stop()
				return nil, err
			}
			stops = append(stops, p.stop)
			e.procs = append(e.procs, p)
		}
	} else {
		for _, role := range []string{RoleWorker, RoleCoordinator} {
			stop, err := startEngine(ctx, role, url, cfg)
			if err != nil {
				e.stop()
				return nil, err
			}
			stops = append(stops, stop)
		}
	}
	e.client, err = client.New(nc, client.Config{})
	if err != nil {
		e.stop()
		return nil, err
	}
	return e, nil
}

// startServer starts an embedded server (R1, file storage, data in a temp
// dir) unless url names an external one, and returns its URL and what
// stops it.
func startServer(url string) (string, func(), error) {
	if url != "" {
		return url, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "canobench-")
	if err != nil {
		return "", nil, err
	}
	srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return srv.ClientURL(), func() { srv.Stop(); _ = os.RemoveAll(dir) }, nil
}

// redelivered counts task attempts after the first in this process's
// worker: no-op tasks never fail, so each one is a command delivered again
// (a lost delivery or acknowledgement costs an AckWait of delay).
var redelivered atomic.Int64

// Engine roles, in this process or (with Config.Processes) in a child.
const (
	RoleWorker      = "worker"
	RoleCoordinator = "coordinator"
	// RoleCmdCoordinator and RoleCmdWorker run what cmd/coordinator and
	// cmd/worker run with their default flags (the coordinator with its
	// scheduler and leader lease, the worker with the demo workflows);
	// the idle scenario measures them.
	RoleCmdCoordinator = "cmd-coordinator"
	RoleCmdWorker      = "cmd-worker"
)

// startEngine starts a worker (with every bench workflow) or a coordinator
// on its own connection to url, as a separate process would, and returns
// what stops it.
func startEngine(ctx context.Context, role, url string, cfg Config) (stop func(), err error) {
	log := slog.New(slog.DiscardHandler)
	if role == RoleCmdCoordinator || role == RoleCmdWorker {
		return startCmd(ctx, role, url, log) // idle.go
	}
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	switch role {
	case RoleWorker:
		reg := &fsm.Registry{}
		demo.RegisterAll(reg)
		wfs := []worker.Definer{demo.OneTask(), demo.Chain(),
			fsm.New[string](breakerWorkflow, "work").Register("work", demo.Noop{Next: "done"},
				fsm.TaskConfig{Retry: fsm.RetryNone(), Breaker: "bench"}).Exit("done"),
			fsm.New[string](timedWorkflow, "work").Register("work", demo.Noop{Next: "done"}).Exit("done").TotalTimeout(time.Hour)}
		for _, n := range cfg.Splits {
			wfs = append(wfs, splitWorkflow(n))
		}
		w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: wfs, Logger: log, Concurrency: 512,
			Hooks: worker.Hooks{AttemptStarted: func(_ *protocol.TaskCommand, attempt int) {
				if attempt > 1 {
					redelivered.Add(1)
				}
			}}})
		if err == nil {
			err = w.Start(ctx)
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
		return func() { _ = w.Stop(context.Background()); nc.Close() }, nil
	case RoleCoordinator:
		co, err := coordinator.New(nc, coordinator.Config{Logger: log, RunRetention: cfg.RunRetention, DeferStart: cfg.DeferStart})
		if err == nil {
			err = co.Start(ctx)
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
		return func() { _ = co.Stop(context.Background()); nc.Close() }, nil
	}
	nc.Close()
	return nil, fmt.Errorf("unknown role %q", role)
}

// baseline publishes n messages the size of a task command to a scratch
// stream (async, bounded in flight) while a pull consumer consumes and acks
// them: raw JetStream msgs/s on the same server, in the same process.
func (e *env) baseline(ctx context.Context, n int) (float64, error) {
	name := "CANOBENCH_BASELINE"
	_ = e.js.DeleteStream(ctx, name)
	_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"canobench.baseline"},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		return 0, err
	}
	defer func() { _ = e.js.DeleteStream(context.Background(), name) }()
	cmd, _ := wirecodec.Encode(&protocol.TaskCommand{V: 1, RunID: "r0123456789abcdefghijklm", Workflow: "one_task", State: "work",
		Branch: -1, Task: protocol.TaskSpec{Kind: "noop", Params: []byte{0x81, 0xa4, 'n', 'e', 'x', 't', 0xa4, 'd', 'o', 'n', 'e'},
			Retry: protocol.RetryPolicy{Mode: protocol.RetryNone}}})
	cons, err := e.js.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return 0, err
	}
	var got atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	pjs, _ := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096))
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := pjs.PublishAsync("canobench.baseline", cmd); err != nil {
			return 0, err
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return 0, errors.New("baseline timed out")
	}
	rate := float64(n) / time.Since(start).Seconds()
	fmt.Fprintf(e.cfg.Progress, "baseline: %d msgs, %.0f msgs/s (publish+consume+ack)\n", n, rate)
	return rate, nil
}

// rounds runs one throughput scenario once (against the run's baseline),
// or, with Config.Rounds > 1, that many times, each after a baseline of
// its own. Then every figure is its median over the rounds (a max_ figure
// its maximum), the result's baseline the median baseline, and ratio_min,
// ratio_median and ratio_max the spread of key (runs_per_s or
// transitions_per_s) over each round's own baseline.
func (e *env) rounds(ctx context.Context, key string, scenario func() (Result, error)) (Result, error) {
	if e.cfg.Rounds <= 1 {
		return scenario()
	}
	var (
		results   []Result
		baselines []float64
		ratios    []float64
	)
	for range e.cfg.Rounds {
		b, err := e.baseline(ctx, e.cfg.Runs)
		if err != nil {
			return Result{}, fmt.Errorf("baseline: %w", err)
		}
		r, err := scenario()
		if err != nil {
			return Result{}, err
		}
		results, baselines = append(results, r), append(baselines, b)
		ratios = append(ratios, r.Figures[key]/b)
	}
	out := Result{Scenario: results[0].Scenario, Note: results[0].Note, Figures: map[string]float64{}, Baseline: median(baselines)}
	for k := range results[0].Figures {
		vs := make([]float64, len(results))
		for i, r := range results {
			vs[i] = r.Figures[k]
		}
		if strings.HasPrefix(k, "max_") {
			out.Figures[k] = slices.Max(vs) // a maximum stays one over the rounds
		} else {
			out.Figures[k] = median(vs)
		}
	}
	out.Figures["rounds"] = float64(len(results))
	out.Figures["ratio_min"] = slices.Min(ratios)
	out.Figures["ratio_median"] = median(ratios)
	out.Figures["ratio_max"] = slices.Max(ratios)
	return out, nil
}

// median returns the median of vs (the mean of the middle two when their
// number is even); vs is reordered.
func median(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// gapWatch keeps the longest time between consecutive completions: a
// stall (of the broker, the engine or the machine) shows as a gap far
// above the mean (1/runs_per_s). tick is called by one goroutine at a time.
type gapWatch struct{ last, max int64 }

func (g *gapWatch) tick() {
	now := time.Now().UnixNano()
	if g.last != 0 && now-g.last > g.max {
		g.max = now - g.last
	}
	g.last = now
}

// loaded is what a load of runs took.
type loaded struct {
	took   time.Duration
	maxGap time.Duration // the longest wait between two completions
	// each is every run's time from its start to its completion, when
	// runs went one at a time (Concurrency 1).
	each []time.Duration
}

// drive triggers n runs of workflow, at most Concurrency in flight, and
// waits for every completion event.
func (e *env) drive(ctx context.Context, label, workflow string, n int) (loaded, error) {
	js, _ := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096))
	replies, refused, err := e.replyInbox(nil)
	if err != nil {
		return loaded{}, err
	}
	defer func() { _ = replies.Unsubscribe() }()
	batch := strconv.FormatInt(time.Now().UnixNano(), 36)
	return e.load(ctx, label, n, protocol.MustNames("").EventSubject(workflow, "*", protocol.EventCompleted), refused,
		func(i int) error {
			return e.sendTrigger(js, replies.Subject, workflow, "b"+strconv.Itoa(i)+"x"+batch)
		})
}

// load starts n runs with start(i), at most Concurrency in flight, and
// waits for a message on completions for each; an error on failed ends it.
func (e *env) load(ctx context.Context, label string, n int, completions string, failed <-chan error, start func(i int) error) (loaded, error) {
	window := make(chan struct{}, e.cfg.Concurrency)
	var completed atomic.Int64
	var gaps gapWatch
	done := make(chan struct{})
	// One run at a time: each one's start (unix ns), for its latency.
	var began atomic.Int64
	var each []time.Duration
	sequential := e.cfg.Concurrency == 1
	sub, err := e.nc.Subscribe(completions, func(*nats.Msg) {
		if sequential {
			each = append(each, time.Duration(time.Now().UnixNano()-began.Load()))
		}
		<-window
		gaps.tick()
		if completed.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return loaded{}, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	stopProgress := e.progress(label, n, &completed)
	defer stopProgress()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		select {
		case window <- struct{}{}:
		case err := <-failed:
			return loaded{}, err
		case <-ctx.Done():
			return loaded{}, ctx.Err()
		}
		if sequential {
			began.Store(time.Now().UnixNano())
		}
		if err := start(i); err != nil {
			return loaded{}, err
		}
	}
	select {
	case <-done:
	case err := <-failed:
		return loaded{}, err
	case <-ctx.Done():
		return loaded{}, ctx.Err()
	case <-time.After(10 * time.Minute):
		return loaded{}, fmt.Errorf("%d of %d runs completed within 10 minutes", completed.Load(), n)
	}
	return loaded{took: time.Since(t0), maxGap: time.Duration(gaps.max), each: each}, nil
}

func (e *env) progress(label string, n int, completed *atomic.Int64) func() {
	quit := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprintf(e.cfg.Progress, "\r%-12s %d/%d\n", label, completed.Load(), n)
				return
			case <-t.C:
				fmt.Fprintf(e.cfg.Progress, "\r%-12s %d/%d", label, completed.Load(), n)
			}
		}
	}()
	return func() { close(quit) }
}

func (e *env) throughput(ctx context.Context, label, workflow string, n, transitionsPerRun int) (Result, error) {
	cpu0, redelivered0 := cpuTime(), redelivered.Load()
	child0 := make([]time.Duration, len(e.procs))
	allocs0 := make([]uint64, len(e.procs))
	for i, p := range e.procs {
		child0[i] = p.cpu()
		allocs0[i], _ = p.allocs()
	}
	l, err := e.drive(ctx, label, workflow, n)
	if err != nil {
		return Result{}, err
	}
	cpu := cpuTime() - cpu0
	runs := float64(n) / l.took.Seconds()
	perRun := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	r := Result{Scenario: label, Figures: map[string]float64{
		"runs":              float64(n),
		"runs_per_s":        runs,
		"transitions_per_s": runs * float64(transitionsPerRun),
		"max_gap_ms":        float64(l.maxGap) / float64(time.Millisecond),
	}}
	if len(e.procs) == 0 {
		r.Figures["redelivered_attempts"] = float64(redelivered.Load() - redelivered0)
	}
	total := cpu
	if len(e.procs) > 0 {
		r.Figures["cpu_us_per_run_server"] = perRun(cpu)
		for i, p := range e.procs {
			c := p.cpu() - child0[i]
			r.Figures["cpu_us_per_run_"+p.role] = perRun(c)
			total += c
			if a, err := p.allocs(); err == nil && allocs0[i] > 0 {
				// Heap objects allocated per run: steady where CPU
				// figures move with the machine's neighbours.
				r.Figures["allocs_per_run_"+p.role] = float64(a-allocs0[i]) / float64(n)
			}
		}
		r.Note = "CPU: server = the harness process (embedded server and the load's client), worker and coordinator = their own processes (10 ms resolution)"
	}
	r.Figures["cpu_us_per_run"] = perRun(total)
	return r, nil
}

func (e *env) breakerOverhead(ctx context.Context) (Result, error) {
	// Alternate rounds without and with the breaker, in ABBA order (the
	// server slows as its state grows, so the second of a pair is at a
	// disadvantage), and compare medians: two back-to-back batches differ
	// by up to 10 % on a noisy machine, which would swamp an overhead near
	// zero.
	const rounds = 6
	n := max(e.cfg.Runs/rounds, 100)
	var without, with []float64
	for i := 0; i < rounds; i++ {
		order := []string{demo.OneTaskName, breakerWorkflow}
		if i%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, wf := range order {
			l, err := e.drive(ctx, wf, wf, n)
			if err != nil {
				return Result{}, err
			}
			if wf == breakerWorkflow {
				with = append(with, float64(n)/l.took.Seconds())
			} else {
				without = append(without, float64(n)/l.took.Seconds())
			}
		}
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	a, b := median(without), median(with)
	return Result{Scenario: "breaker", Figures: map[string]float64{
		"runs_per_s_without": a, "runs_per_s_with": b, "overhead_pct": (a - b) / a * 100,
	}, Note: fmt.Sprintf("medians of %d rounds of %d runs each, ABBA order", rounds, n)}, nil
}

func (e *env) splits(ctx context.Context) (Result, error) {
	r := Result{Scenario: "split", Figures: map[string]float64{}}
	for _, n := range e.cfg.Splits {
		reps := max(1, 10_000/n)
		var total time.Duration
		for i := 0; i < reps; i++ {
			start := time.Now()
			out, err := e.client.Run(ctx, "split_"+strconv.Itoa(n), nil)
			if err != nil {
				return r, err
			}
			if out.Status != client.RunCompleted {
				return r, fmt.Errorf("split %d: %s", n, out.Status)
			}
			total += time.Since(start)
		}
		per := total / time.Duration(reps)
		r.Figures[fmt.Sprintf("split_%d_ms", n)] = float64(per.Microseconds()) / 1000
		r.Figures[fmt.Sprintf("split_%d_us_per_branch", n)] = float64(per.Microseconds()) / float64(n)
		fmt.Fprintf(e.cfg.Progress, "split %6d: %v per split, %.1f µs per branch\n", n, per.Round(time.Microsecond), float64(per.Microseconds())/float64(n))
	}
	return r, nil
}

// latency runs sequential one-task workflows: trigger → completion event
// seen by the client.
func (e *env) latency(ctx context.Context) (Result, error) {
	n := e.cfg.LatencyRuns
	ch := make(chan string, 16)
	sub, err := e.nc.Subscribe(protocol.MustNames("").EventSubject(demo.OneTaskName, "*", protocol.EventCompleted), func(m *nats.Msg) {
		var ev protocol.Event
		if wirecodec.Decode(m.Data, &ev, 0) == nil {
			ch <- ev.RunID
		}
	})
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	replies, refused, err := e.replyInbox(nil)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = replies.Unsubscribe() }()
	js, _ := jetstream.New(e.nc)
	lat := make([]time.Duration, 0, n)
	start0 := time.Now()
	for i := 0; i < n; i++ {
		id := "l" + strconv.Itoa(i) + "x" + strconv.FormatInt(start0.UnixNano(), 36)
		start := time.Now()
		if err := e.sendTrigger(js, replies.Subject, demo.OneTaskName, id); err != nil {
			return Result{}, err
		}
		for got := ""; got != id; {
			select {
			case got = <-ch:
			case err := <-refused:
				return Result{}, err
			case <-time.After(30 * time.Second):
				return Result{}, fmt.Errorf("run %s did not complete", id)
			}
		}
		lat = append(lat, time.Since(start))
	}
	hops, err := e.hopLatency(ctx, n)
	if err != nil {
		return Result{}, fmt.Errorf("raw hop: %w", err)
	}
	// The same protocol in bare nats.go (the floor scenario), one run at a
	// time: what the path itself takes on this machine, without the engine.
	fe := *e
	fe.cfg.Runs, fe.cfg.Concurrency = n, 1
	floor, err := fe.floor(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("floor, one run at a time: %w", err)
	}
	p50, hop50 := percentile(lat, 0.50), percentile(hops, 0.50)
	return Result{Scenario: "latency", Figures: map[string]float64{
		"p50_ms": p50, "p90_ms": percentile(lat, 0.90), "p99_ms": percentile(lat, 0.99), "max_ms": percentile(lat, 1),
		"raw_hop_p50_ms": hop50, "raw_hop_p99_ms": percentile(hops, 0.99), "p50_in_raw_hops": p50 / hop50,
		"floor_p50_ms": floor.Figures["p50_ms"], "floor_p99_ms": floor.Figures["p99_ms"],
	}, Note: "sequential one-task runs; trigger sent as a request (-stream-triggers: published to the triggers stream, " +
		"its PubAck not awaited), completion event pushed to the client. " +
		"raw hop: one stored JetStream message, published → delivered to a waiting pull consumer (the baseline for one step of the path; " +
		"a one-task run crosses three stored messages: command, record create, record update; four with -stream-triggers). " +
		"floor: the one-task protocol in bare nats.go (the floor scenario), one run at a time: the least this path takes here"}, nil
}

// replyInbox subscribes to the replies of trigger requests (each request's
// reply subject is the returned subscription's subject with the wildcard
// replaced); the first refusal is sent on the channel, and started, when
// not nil, is called for each run a reply says started.
func (e *env) replyInbox(started func()) (*nats.Subscription, <-chan error, error) {
	refused := make(chan error, 1)
	sub, err := e.nc.Subscribe(nats.NewInbox()+".*", func(m *nats.Msg) {
		var r protocol.TriggerReply
		err := wirecodec.Decode(m.Data, &r, 0)
		if err == nil && r.Error != nil {
			err = fmt.Errorf("trigger refused: %s (retry: %t)", r.Error.Message, r.Retry)
		}
		if err != nil {
			select {
			case refused <- err:
			default:
			}
			return
		}
		if started != nil {
			started()
		}
	})
	return sub, refused, err
}

// sendTrigger starts run id of workflow: a request answered on inbox (its
// last token replaced by the run id), or with StreamTriggers a publish to
// the triggers stream.
func (e *env) sendTrigger(js jetstream.JetStream, inbox, workflow, id string) error {
	data, _ := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: workflow, RunID: id})
	names := protocol.MustNames("")
	if e.cfg.StreamTriggers {
		msg := &nats.Msg{Subject: names.TriggerSubject(workflow), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "trig:"+id)
		_, err := js.PublishMsgAsync(msg)
		return err
	}
	msg := &nats.Msg{Subject: names.RPCTriggerSubject(workflow), Data: data, Reply: strings.TrimSuffix(inbox, "*") + id,
		Header: nats.Header{protocol.HeaderNewRunID: {"1"}}}
	return e.nc.PublishMsg(msg)
}

// percentile is the p-th percentile of ds in ms (ds is sorted in place).
func percentile(ds []time.Duration, p float64) float64 {
	slices.Sort(ds)
	return float64(ds[min(len(ds)-1, int(float64(len(ds))*p))].Microseconds()) / 1000
}

// hopLatency measures n sequential raw JetStream hops on the same server: a
// message published to a file stream, delivered to a pull consumer that has
// a request waiting, as the engine's consumers do.
func (e *env) hopLatency(ctx context.Context, n int) ([]time.Duration, error) {
	name := "CANOBENCH_HOP"
	_ = e.js.DeleteStream(ctx, name)
	if _, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"canobench.hop"},
		Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy}); err != nil {
		return nil, err
	}
	defer func() { _ = e.js.DeleteStream(context.Background(), name) }()
	cons, err := e.js.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return nil, err
	}
	got := make(chan struct{}, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack(); got <- struct{}{} }, jetstream.PullMaxMessages(64))
	if err != nil {
		return nil, err
	}
	defer cc.Stop()
	pjs, _ := jetstream.New(e.nc)
	data := make([]byte, 200)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := pjs.PublishAsync("canobench.hop", data); err != nil {
			return nil, err
		}
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			return nil, errors.New("raw hop not delivered within 30 s")
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func (e *env) memory(ctx context.Context) (Result, error) {
	r := Result{Scenario: "memory", Figures: map[string]float64{}}
	done := 0
	for _, target := range []int{10_000, e.cfg.MemoryRuns} {
		if _, err := e.drive(ctx, "memory", demo.OneTaskName, target-done); err != nil {
			return r, err
		}
		done = target
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		r.Figures[fmt.Sprintf("rss_mb_after_%d", target)] = rssMB()
		r.Figures[fmt.Sprintf("heap_inuse_mb_after_%d", target)] = float64(ms.HeapInuse) / (1 << 20)
		for _, p := range e.procs {
			r.Figures[fmt.Sprintf("%s_rss_mb_after_%d", p.role, target)] = p.rssMB()
			live, free, err := p.heapMB()
			if err != nil {
				return r, err
			}
			r.Figures[fmt.Sprintf("%s_heap_live_mb_after_%d", p.role, target)] = live
			r.Figures[fmt.Sprintf("%s_heap_free_mb_after_%d", p.role, target)] = free
		}
	}
	r.Note = "RSS and Go heap of the whole process: embedded server (with, under -event-capture, its 64 MiB in-memory events stream), coordinator and worker"
	if len(e.procs) > 0 {
		r.Note = "rss/heap: the harness process (embedded server, with, under -event-capture, its 64 MiB in-memory events stream, and the load's client); " +
			"worker and coordinator: their own processes: after a forced GC, heap_live is the live objects (what a leak grows), " +
			"heap_free the heap the Go runtime keeps for reuse, not yet returned to the OS (in the RSS; it follows the heap's peak under load)"
	}
	return r, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssMB() float64 { return procRSSMB("self") }

// procRSSMB reads the VmRSS of process pid ("self" for this one).
func procRSSMB(pid string) float64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func machine() string {
	model := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// Print writes a human-readable table, or JSON.
func Print(w io.Writer, rep *Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "machine:  %s\nserver:   %s\n", rep.Machine, rep.Server)
	if rep.Baseline > 0 {
		fmt.Fprintf(w, "baseline: %.0f msgs/s (raw JetStream publish+consume+ack)\n", rep.Baseline)
	}
	fmt.Fprintln(w)
	for _, r := range rep.Results {
		keys := make([]string, 0, len(r.Figures))
		for k := range r.Figures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		base := r.Baseline
		if base == 0 {
			base = rep.Baseline
		}
		if base != rep.Baseline {
			fmt.Fprintf(w, "%-10s %-28s %12.2f  (its rounds' median; ratios below are to it)\n", r.Scenario, "baseline_msgs_per_s", base)
		}
		for _, k := range keys {
			v := r.Figures[k]
			ratio := ""
			if strings.HasSuffix(k, "_per_s") && base > 0 {
				ratio = fmt.Sprintf("  (%.2f× baseline)", v/base)
			}
			fmt.Fprintf(w, "%-10s %-28s %12.2f%s\n", r.Scenario, k, v, ratio)
		}
	}
	return nil
}
