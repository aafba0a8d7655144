package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cano-nats/cano/internal/retry"
	"github.com/cano-nats/cano/internal/wire/app"
	"github.com/cano-nats/cano/internal/wire/cli"
)

// Idle scenario defaults.
const (
	// IdleSettleDefault is how long start-up is left to settle (streams
	// provisioned, definitions registered, the leader elected, the first
	// pulls issued) before the idle scenario measures.
	IdleSettleDefault = 10 * time.Second
	// IdleForDefault is how long the idle scenario measures.
	IdleForDefault = time.Minute
)

// idle measures what a coordinator and a worker with nothing to do cost
// (issue #12: each under 1 % of a core). On a server of its own it starts
// what cmd/coordinator and cmd/worker run with their default flags, lets
// start-up settle, and reads their CPU time before and after a window with
// no runs: as a share of one core, and the context switches per second
// (how often a process wakes up). With Config.Processes the coordinator and
// the worker are child processes and the server is this process (so the
// split is per process); without it everything shares this process and
// one total is reported.
func idle(ctx context.Context, cfg Config) (Result, error) {
	settle, window := cfg.IdleSettle, cfg.IdleFor
	if settle == 0 {
		settle = IdleSettleDefault
	}
	if window <= 0 {
		window = IdleForDefault
	}
	url, stopServer, err := startServer(cfg.URL)
	if err != nil {
		return Result{}, err
	}
	defer stopServer()
	var procs []*child
	for _, role := range []string{RoleCmdWorker, RoleCmdCoordinator} {
		if cfg.Processes {
			p, err := startChild(ctx, role, url, cfg)
			if err != nil {
				return Result{}, err
			}
			defer p.stop()
			procs = append(procs, p)
			continue
		}
		stop, err := startEngine(ctx, role, url, cfg)
		if err != nil {
			return Result{}, err
		}
		defer stop()
	}
	fmt.Fprintf(cfg.Progress, "idle: started a coordinator and a worker; settling %s, then measuring %s\n", settle, window)
	if err := retry.Sleep(ctx, settle); err != nil {
		return Result{}, err
	}
	self0, selfWake0 := cpuTime(), selfSwitches()
	cpu0 := make([]time.Duration, len(procs))
	wake0 := make([]int64, len(procs))
	for i, p := range procs {
		cpu0[i], wake0[i] = p.cpu(), switches(p.cmd.Process.Pid)
	}
	start := time.Now()
	if err := retry.Sleep(ctx, window); err != nil {
		return Result{}, err
	}
	took := time.Since(start)
	pct := func(d time.Duration) float64 { return d.Seconds() / took.Seconds() * 100 }
	perS := func(n int64) float64 { return float64(n) / took.Seconds() }
	r := Result{Scenario: "idle", Figures: map[string]float64{"seconds": took.Seconds()}}
	self := "server"
	switch {
	case cfg.Processes && cfg.URL != "":
		self = "harness" // the external server's CPU is not measured here
		r.Note = "% of one core over the window; coordinator and worker: their own processes (10 ms resolution); the external server is not measured"
	case cfg.Processes:
		r.Note = "% of one core over the window; server: the harness process (the embedded server; the harness itself only waits); coordinator and worker: their own processes (10 ms resolution)"
	default:
		self = "total"
		r.Note = "% of one core over the window, one process: embedded server, coordinator and worker (-procs splits it)"
	}
	r.Figures["cpu_pct_of_core_"+self] = pct(cpuTime() - self0)
	r.Figures["wakeups_per_s_"+self] = perS(selfSwitches() - selfWake0)
	for i, p := range procs {
		name := strings.TrimPrefix(p.role, "cmd-")
		r.Figures["cpu_pct_of_core_"+name] = pct(p.cpu() - cpu0[i])
		r.Figures["wakeups_per_s_"+name] = perS(switches(p.cmd.Process.Pid) - wake0[i])
	}
	return r, nil
}

// startCmd runs what cmd/coordinator or cmd/worker runs with its default
// flags (no dashboard, no metrics endpoint, tracing off) against url, and
// returns once it is ready.
func startCmd(ctx context.Context, role, url string, log *slog.Logger) (stop func(), err error) {
	actx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	done := make(chan error, 1)
	nc := cli.NATSConfig{URL: url}
	go func() {
		if role == RoleCmdCoordinator {
			done <- app.RunCoordinator(actx, log, app.CoordinatorConfig{NATS: nc, Prefix: "cano", DrainTimeout: 3 * time.Second,
				Ready: func(string) { close(ready) }}, 5*time.Second)
			return
		}
		done <- app.RunWorker(actx, log, app.WorkerConfig{NATS: nc, Prefix: "cano", Ready: func() { close(ready) }}, 10*time.Second)
	}()
	select {
	case <-ready:
		return func() {
			cancel()
			if err := <-done; err != nil {
				log.Warn("idle scenario: stopping "+role+" failed", "err", err)
			}
		}, nil
	case err := <-done:
		cancel()
		if err == nil {
			err = fmt.Errorf("%s stopped before it was ready", role)
		}
		return nil, err
	}
}

// switches is how many times process pid's threads have been switched
// out so far (voluntary and not): about how often it woke up.
func switches(pid int) int64 {
	paths, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	var n int64
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // the thread has exited
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasSuffix(strings.SplitN(line, ":", 2)[0], "ctxt_switches") {
				v, _ := strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ":", 2)[1]), 10, 64)
				n += v
			}
		}
	}
	return n
}

// selfSwitches is switches for this process, exited threads included.
func selfSwitches() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Nvcsw + ru.Nivcsw
}
