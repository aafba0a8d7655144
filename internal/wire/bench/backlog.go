package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

// backlogWorkflow runs one task of a kind only the backlog scenario's worker hosts.
const backlogWorkflow = "one_task_backlog"

// heldNoop is demo.Noop under a kind of its own, so the scenario's other workers leave it waiting.
type heldNoop struct {
	Next string `msgpack:"next"`
}

func (heldNoop) Kind() string { return "noop_backlog" }

func (n heldNoop) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(n.Next), nil
}

// backlog measures what the job queues' own benchmarks measure (asynq's
// BenchmarkEndToEndSimple, River's "river bench"): runs started while no
// worker hosts their task, then worked by a worker started afterwards, only
// the working timed. Each trigger is answered (the run is durable) before
// the worker starts; the figures are runs worked per second and the CPU of
// every process spent while working them.
func (e *env) backlog(ctx context.Context) (Result, error) {
	n := e.cfg.Runs
	reg := &fsm.Registry{}
	fsm.Register[heldNoop](reg)
	wf := fsm.New[string](backlogWorkflow, "work").Register("work", heldNoop{Next: "done"}).Exit("done")
	startWorker := func() (func(), error) {
		w, err := worker.New(e.nc, worker.Config{Registry: reg, Workflows: []worker.Definer{wf},
			Logger: slog.New(slog.DiscardHandler), Concurrency: 512})
		if err == nil {
			err = w.Start(ctx)
		}
		if err != nil {
			return nil, err
		}
		return func() { _ = w.Stop(context.Background()) }, nil
	}
	// A first start registers the workflow and its task's consumer; then the runs wait for the next.
	stop, err := startWorker()
	if err != nil {
		return Result{}, err
	}
	stop()

	var completed atomic.Int64
	done := make(chan struct{})
	sub, err := e.nc.Subscribe(protocol.MustNames("").EventSubject(backlogWorkflow, "*", protocol.EventCompleted), func(*nats.Msg) {
		if completed.Add(1) == int64(n) {
			close(done)
		}
	})
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := e.triggerAll(ctx, backlogWorkflow, n); err != nil {
		return Result{}, err
	}
	// Nothing hosts the task yet: a run completed now would be timed by no one.
	early := completed.Load()
	stopProgress := e.progress("backlog", n, &completed)
	defer stopProgress()

	cpu0 := e.cpuAll()
	t0 := time.Now()
	stop, err = startWorker()
	if err != nil {
		return Result{}, err
	}
	defer stop()
	select {
	case <-done:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-time.After(10 * time.Minute):
		return Result{}, fmt.Errorf("%d of %d waiting runs completed within 10 minutes", completed.Load(), n)
	}
	took := time.Since(t0)
	cpu := e.cpuAll() - cpu0
	return Result{Scenario: "backlog", Figures: map[string]float64{
		"runs":                   float64(n),
		"runs_per_s":             float64(n) / took.Seconds(),
		"cpu_us_per_run":         float64(cpu.Microseconds()) / float64(n),
		"completed_before_start": float64(early),
	}, Note: "runs triggered (each answered) with no worker for their task, then worked by one started after: only the working timed, as the job queues' own benchmarks do"}, nil
}

// cpuAll is the CPU time of this process and of the engine's child processes.
func (e *env) cpuAll() time.Duration {
	total := cpuTime()
	for _, p := range e.procs {
		total += p.cpu()
	}
	return total
}

// triggerAll starts n runs of workflow by trigger requests, Concurrency in
// flight, and returns once every one is answered as started.
func (e *env) triggerAll(ctx context.Context, workflow string, n int) error {
	window := make(chan struct{}, e.cfg.Concurrency)
	var answered atomic.Int64
	all := make(chan struct{})
	sub, refused, err := e.replyInbox(func() {
		<-window
		if answered.Add(1) == int64(n) {
			close(all)
		}
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	js, _ := jetstream.New(e.nc)
	batch := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range n {
		select {
		case window <- struct{}{}:
		case err := <-refused:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := e.sendTrigger(js, sub.Subject, workflow, "q"+strconv.Itoa(i)+"x"+batch); err != nil {
			return err
		}
	}
	select {
	case <-all:
		return nil
	case err := <-refused:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Minute):
		return errors.New("not every trigger was answered within 5 minutes")
	}
}
