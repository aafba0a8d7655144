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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cano-nats/cano/internal/cli"
	"github.com/cano-nats/cano/internal/demo"
	"github.com/cano-nats/cano/internal/retry"
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
	// Metrics, when set, gets the coordinator's (and the dev worker's)
	// metrics; see NewMetricsRegistry and MetricsHandler (metrics.go).
	Metrics *prometheus.Registry
}

// RunCoordinator runs until ctx ends, then shuts down within shutdown.
//
// It waits for the broker: connecting, provisioning, and starting the
// coordinator and the scheduler are retried with a capped backoff and a
// log line per attempt while the server is down, starting, or a cluster is
// still electing leaders; after an outage the connection reconnects for
// ever and every reconnect re-applies the streams and buckets (a restart
// loses the in-memory events stream). It returns an error only for what
// retrying cannot fix (a bad setting, rejected credentials, a stream
// setting that cannot change in place); a signal while waiting is a clean
// exit (nil).
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
	nc, err := cli.ConnectWait(ctx, log, cfg.NATS, nats.Name("cano-coordinator"))
	if err != nil {
		return stopped(ctx, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Provision and start with retries: a broker that is down, starting or
	// still electing leaders is waited for; only a configuration error
	// retrying cannot fix ends the process.
	prov := provision.Config{Prefix: cfg.Prefix, Replicas: cfg.Replicas, LeaderTTL: cfg.LeaderTTL}
	if err := provision.Wait(ctx, log, js, prov); err != nil {
		return stopped(ctx, err)
	}
	wait := startLoop(log, nc)
	var co *coordinator.Coordinator
	err = wait.Do(ctx, "start coordinator", func(actx context.Context) error {
		c, err := coordinator.New(nc, coordinator.Config{Prefix: cfg.Prefix, Shards: cfg.Shards, AckWait: cfg.AckWait, Logger: log,
			Metrics: registerer(cfg.Metrics)})
		if err != nil {
			return retry.Permanent(err)
		}
		if err := c.Start(actx); err != nil {
			stopQuietly(c.Stop)
			return err
		}
		co = c
		return nil
	})
	if err != nil {
		return stopped(ctx, err)
	}
	// Streams a server restart loses (the in-memory events stream) come
	// back on every reconnect.
	unwatch := provision.Watch(nc, js, prov, log)
	defer unwatch()
	// The scheduler: every coordinator campaigns; the elected leader fires
	// cron, interval and manual flows.
	var sch *scheduler.Scheduler
	err = wait.Do(ctx, "start scheduler", func(actx context.Context) error {
		s, err := scheduler.New(js, scheduler.Config{Prefix: cfg.Prefix, FlowFile: cfg.FlowFile,
			DrainTimeout: cfg.DrainTimeout, Logger: log, Metrics: registerer(cfg.Metrics)})
		if err != nil {
			return retry.Permanent(err)
		}
		if err := s.Start(actx); err != nil {
			stopQuietly(s.Stop)
			return err
		}
		sch = s
		return nil
	})
	if err != nil {
		stopQuietly(co.Stop)
		return stopped(ctx, err)
	}
	var w *worker.Worker
	if cfg.Dev {
		w, err = startWorker(ctx, wait, nc, worker.Config{Prefix: cfg.Prefix, Registry: demoRegistry(), Logger: log,
			Workflows: demoWorkflows(), Metrics: registerer(cfg.Metrics)})
		if err != nil {
			stopQuietly(sch.Stop)
			stopQuietly(co.Stop)
			return stopped(ctx, err)
		}
		watch, trigger := devHints(cfg.Prefix, srv.ClientURL()) // hints.go
		log.Info("dev mode: connect other processes with -s "+srv.ClientURL(), "watch", watch, "trigger", trigger)
		if unsub, err := logRuns(log, nc, cfg.Prefix); err == nil { // runlog.go
			defer unsub()
		}
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
			var out *client.Run
			out, err = cl.Await(ctx, id)
			if err == nil {
				var joined string
				_ = out.Output(&joined)
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
	// Metrics, when set, gets the worker's metrics (see CoordinatorConfig.Metrics).
	Metrics *prometheus.Registry
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
// a worker.Worker the same way with their own registry and workflows. It
// waits for the broker, and re-provisions after a reconnect, as
// [RunCoordinator] does.
func RunWorker(ctx context.Context, log *slog.Logger, cfg WorkerConfig, shutdown time.Duration) error {
	nc, err := cli.ConnectWait(ctx, log, cfg.NATS, nats.Name("cano-worker"))
	if err != nil {
		return stopped(ctx, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// A worker provisions what it needs (keeping the replica counts a
	// coordinator chose), waiting for the broker like the coordinator.
	prov := provision.Config{Prefix: cfg.Prefix}
	if err := provision.Wait(ctx, log, js, prov); err != nil {
		return stopped(ctx, err)
	}
	w, err := startWorker(ctx, startLoop(log, nc), nc, worker.Config{Prefix: cfg.Prefix, ID: cfg.ID,
		Registry: demoRegistry(), Logger: log, Concurrency: cfg.Concurrency, AckWait: cfg.AckWait,
		Workflows: demoWorkflows(), Metrics: registerer(cfg.Metrics)})
	if err != nil {
		return stopped(ctx, err)
	}
	unwatch := provision.Watch(nc, js, prov, log)
	defer unwatch()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), shutdown)
	defer cancel()
	return w.Stop(sctx)
}

// startLoop retries a start step while the broker is unreachable or not
// ready. A step's configuration error is marked retry.Permanent; a
// setting provision cannot change in place is permanent too.
func startLoop(log *slog.Logger, nc *nats.Conn) retry.Loop {
	return retry.Loop{
		Log: log,
		URL: func() string {
			if u := nc.ConnectedUrlRedacted(); u != "" {
				return u
			}
			return "the server (disconnected)"
		},
		Permanent:      provision.Permanent,
		AttemptTimeout: startAttemptTimeout,
	}
}

// startAttemptTimeout bounds one attempt at starting a component.
const startAttemptTimeout = 30 * time.Second

// startWorker builds and starts a worker, retrying the start while the
// broker is not ready.
func startWorker(ctx context.Context, wait retry.Loop, nc *nats.Conn, cfg worker.Config) (*worker.Worker, error) {
	var w *worker.Worker
	err := wait.Do(ctx, "start worker", func(actx context.Context) error {
		x, err := worker.New(nc, cfg)
		if err != nil {
			return retry.Permanent(err)
		}
		if err := x.Start(actx); err != nil {
			stopQuietly(x.Stop)
			return err
		}
		w = x
		return nil
	})
	return w, err
}

// stopQuietly stops a component that failed to start (or that a later
// failure leaves unused), bounded by a short deadline.
func stopQuietly(stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = stop(ctx)
}

// stopped is err, or nil when ctx ended: a signal during the wait for the
// broker is a normal shutdown, not a failure.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, retry.ErrPermanent) && !provision.Permanent(err) {
		return nil
	}
	return err
}
