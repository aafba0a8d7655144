// Package app wires the processes the thin mains in cmd/ start: the
// coordinator (optionally in dev mode, with an embedded NATS server, an
// in-process demo worker and a demo run every few seconds) and the worker.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/cli"
	"github.com/cano-nats/cano/internal/demo"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// CoordinatorConfig is what cmd/coordinator's flags fill in.
type CoordinatorConfig struct {
	NATS      cli.NATSConfig
	Prefix    string
	Replicas  int
	Shards    int
	AckWait   time.Duration
	Dev       bool
	DataDir   string
	Listen    string
	DemoEvery time.Duration
	// FlowFile seeds scheduler flows (JSON, see scheduler.LoadFlowFile).
	FlowFile string
	// LeaderTTL is the scheduler lease TTL (0: provision default, 10s).
	LeaderTTL time.Duration
	// DrainTimeout bounds how long shutdown waits for running flows.
	DrainTimeout time.Duration
	// Ready, when set, is called once everything runs (tests).
	Ready func(url string)
}

// RunCoordinator runs until ctx ends, then shuts down within shutdown.
func RunCoordinator(ctx context.Context, log *slog.Logger, cfg CoordinatorConfig, shutdown time.Duration) error {
	var srv *embedded.Server
	if cfg.Dev {
		host, portStr, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return fmt.Errorf("-listen %q: %w", cfg.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return fmt.Errorf("-listen %q: %w", cfg.Listen, err)
		}
		srv, err = embedded.Start(embedded.Config{StoreDir: cfg.DataDir, Host: host, Port: port})
		if err != nil {
			return err
		}
		defer srv.Stop()
		cfg.NATS.URL = srv.ClientURL()
		log.Info("embedded NATS with JetStream", "url", srv.ClientURL(), "data", cfg.DataDir)
	}
	nc, err := cli.Connect(ctx, cfg.NATS, nats.Name("cano-coordinator"))
	if err != nil {
		return err
	}
	defer nc.Close()

	prov := &provision.Config{Prefix: cfg.Prefix, Replicas: cfg.Replicas, LeaderTTL: cfg.LeaderTTL}
	co, err := coordinator.New(nc, coordinator.Config{Prefix: cfg.Prefix, Shards: cfg.Shards, AckWait: cfg.AckWait, Logger: log, Provision: prov})
	if err != nil {
		return err
	}
	if err := co.Start(ctx); err != nil {
		return err
	}
	// The scheduler: every coordinator campaigns; the elected leader fires
	// cron, interval and manual flows.
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	sch, err := scheduler.New(js, scheduler.Config{Prefix: cfg.Prefix, FlowFile: cfg.FlowFile,
		DrainTimeout: cfg.DrainTimeout, Logger: log})
	if err != nil {
		return err
	}
	if err := sch.Start(ctx); err != nil {
		return err
	}
	var w *worker.Worker
	if cfg.Dev {
		w, err = worker.New(nc, worker.Config{Prefix: cfg.Prefix, Registry: demoRegistry(), Logger: log,
			Workflows: demoWorkflows()})
		if err != nil {
			return err
		}
		if err := w.Start(ctx); err != nil {
			return err
		}
		log.Info("dev mode: connect other processes with -s "+srv.ClientURL(),
			"watch", "nats sub 'cano.event.>' -s "+srv.ClientURL(),
			"trigger", "nats pub cano.trigger."+demo.WorkflowName+" '{\"input\":{}}' -H Content-Type:application/json -s "+srv.ClientURL())
	}
	if cfg.Ready != nil {
		cfg.Ready(nc.ConnectedUrl())
	}
	demoDone := make(chan struct{})
	if cfg.Dev && cfg.DemoEvery > 0 {
		go func() { defer close(demoDone); runDemo(ctx, log, nc, cfg) }()
	} else {
		close(demoDone)
	}
	<-ctx.Done()
	log.Info("shutting down", "deadline", shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), shutdown)
	defer cancel()
	<-demoDone
	// The scheduler stops first: it lets running flows finish (which needs
	// the coordinator and workers) and then releases leadership.
	errs := []error{sch.Stop(sctx)}
	if w != nil {
		errs = append(errs, w.Stop(sctx))
	}
	errs = append(errs, co.Stop(sctx))
	return errors.Join(errs...)
}

func runDemo(ctx context.Context, log *slog.Logger, nc *nats.Conn, cfg CoordinatorConfig) {
	cl, err := client.New(nc, client.Config{Prefix: cfg.Prefix})
	if err != nil {
		log.Error("demo client", "err", err)
		return
	}
	t := time.NewTicker(cfg.DemoEvery)
	defer t.Stop()
	for {
		id, err := cl.Trigger(ctx, demo.WorkflowName, nil)
		if err == nil {
			var out *client.Outcome
			out, err = cl.Await(ctx, id)
			if err == nil {
				var joined string
				_ = out.Decode(&joined)
				log.Info("demo run completed", "run_id", id, "path", out.Path, "output", joined)
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("demo run", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// WorkerConfig is what cmd/worker's flags fill in.
type WorkerConfig struct {
	NATS        cli.NATSConfig
	Prefix      string
	ID          string
	Concurrency int
	AckWait     time.Duration
}

// SleepyTaskDuration is how long the demo "sleepy" workflow's task sleeps.
const SleepyTaskDuration = 300 * time.Millisecond

// SleepySplitBranchDuration is how long each branch of the demo
// "sleepy_split" workflow sleeps.
const SleepySplitBranchDuration = 1500 * time.Millisecond

func demoRegistry() *fsm.Registry {
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	demo.RegisterFaults(reg)
	demo.RegisterSplits(reg)
	return reg
}

func demoWorkflows() []worker.Definer {
	return []worker.Definer{demo.Workflow(), demo.OneTask(), demo.Chain(), demo.Sleepy(SleepyTaskDuration),
		demo.Flaky(), demo.Guarded(), demo.SleepySplit(SleepySplitBranchDuration)}
}

// RunWorker runs the demo worker until ctx ends. Users' own binaries build
// a worker.Worker the same way with their own registry and workflows.
func RunWorker(ctx context.Context, log *slog.Logger, cfg WorkerConfig, shutdown time.Duration) error {
	nc, err := cli.Connect(ctx, cfg.NATS, nats.Name("cano-worker"))
	if err != nil {
		return err
	}
	defer nc.Close()
	w, err := worker.New(nc, worker.Config{Prefix: cfg.Prefix, ID: cfg.ID, Registry: demoRegistry(), Logger: log,
		Concurrency: cfg.Concurrency, AckWait: cfg.AckWait, Workflows: demoWorkflows(), Provision: &provision.Config{}})
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), shutdown)
	defer cancel()
	return w.Stop(sctx)
}
