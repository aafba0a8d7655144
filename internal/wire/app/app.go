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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cano-nats/cano/internal/retry"
	"github.com/cano-nats/cano/internal/tracectx"
	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/internal/wire/dashboard"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wire/health"
	"github.com/cano-nats/cano/internal/wire/provisioning"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// CoordinatorConfig is what cmd/coordinator's flags fill in.
type CoordinatorConfig struct {
	NATS     cli.NATSConfig
	Prefix   string
	Replicas int
	Shards   int
	AckWait  time.Duration
	// DeferStart is coordinator.Config.DeferStart (0: off).
	DeferStart time.Duration
	// RunRetention and RunStoreRetention are coordinator.Config's (0: its
	// defaults; -1 keeps).
	RunRetention, RunStoreRetention time.Duration
	Dev                             bool
	DataDir                         string
	Listen                          string
	DemoEvery                       time.Duration
	// FlowFile seeds scheduler flows (JSON, see scheduler.LoadFlowFile).
	FlowFile string
	// EventCapture provisions the events capture stream (replay of recent
	// events); dev mode always does.
	EventCapture bool
	// LeaderTTL is the scheduler lease TTL (0: provision default, 10s).
	LeaderTTL time.Duration
	// DrainTimeout bounds how long shutdown waits for running flows.
	DrainTimeout time.Duration
	// Ready, when set, is called once everything runs (tests).
	Ready func(url string)
	// Extra, when set, adds task kinds and workflows to the dev-mode
	// worker (tests: the fault-injection kinds, see internal/wire/faults).
	Extra func(*fsm.Registry) []worker.Definer
	// HTTP is the dashboard's listen address: "" means DashboardAddrDev
	// in dev mode and no dashboard otherwise; "off" disables it.
	HTTP string
	// HTTPToken, or HTTPUser and HTTPPassword, are the dashboard's
	// credentials; an address other than loopback needs them.
	HTTPToken, HTTPUser, HTTPPassword string
	// HTTPIndexMaxRuns caps the dashboard's runs index
	// (dashboard.Config.IndexMaxRuns): 0 means its default, -1 no cap.
	HTTPIndexMaxRuns int
	// HTTPReady, when set, is called with the dashboard's address once it
	// listens (tests).
	HTTPReady func(addr string)
	// MetricsAddr is the host:port serving /healthz and /readyz; empty
	// serves none, except in dev mode, which serves DevMetricsAddrDefault
	// (and goes on without it when that port is taken). "off" serves none
	// in dev mode too.
	MetricsAddr string
	// Health, when set, receives the health server once it listens (tests).
	Health func(*health.Server)
	// Metrics, when set, gets the coordinator's (and the dev worker's)
	// metrics; see NewMetricsRegistry and MetricsHandler (metrics.go).
	Metrics *prometheus.Registry
	// Tracing, when set, records the spans of traced runs (nil: off);
	// cmd/coordinator builds it from the OTEL_* variables
	// (internal/wire/otelenv). In dev mode the demo runs start a trace.
	Tracing trace.TracerProvider
}

// DashboardAddrDev is the dashboard's address in dev mode unless -http
// says otherwise.
const DashboardAddrDev = dashboard.AddrDefault

// RunCoordinator runs until ctx ends, then shuts down within shutdown.
//
// It waits for the broker: connecting, provisioning, and starting the
// coordinator and the scheduler are retried with a capped backoff and a
// log line per attempt while the server is down, starting, or a cluster is
// still electing leaders; after an outage the connection reconnects for
// ever and every reconnect re-applies the streams and buckets (a restart
// loses the in-memory events capture stream, when configured). It returns
// an error only for what retrying cannot fix (a bad setting, rejected
// credentials, a stream setting that cannot change in place); a signal
// while waiting is a clean exit (nil).
func RunCoordinator(ctx context.Context, log *slog.Logger, cfg CoordinatorConfig, shutdown time.Duration) error {
	if cfg.Metrics == nil && servesMetrics(cfg.MetricsAddr, cfg.Dev) {
		cfg.Metrics = NewMetricsRegistry()
	}
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
		srv, err = embedded.Start(embedded.Config{StoreDir: cfg.DataDir, Host: host, Port: port,
			Logger: log.With("component", "nats-server")})
		if errors.Is(err, embedded.ErrAddrInUse) {
			return fmt.Errorf("%s is in use (another coordinator -dev?): stop it or choose another address with -listen HOST:PORT", cfg.Listen)
		}
		if err != nil {
			return err
		}
		defer srv.Stop()
		cfg.NATS.URL = srv.ClientURL()
		log.Info("embedded NATS with JetStream", "url", srv.ClientURL(), "data", cfg.DataDir)
	}
	// After the embedded server: a second -dev is told first that its NATS
	// port is taken, not that its metrics port is.
	hs, err := startHealth(ctx, log, cfg.MetricsAddr, cfg.Dev, cfg.Metrics)
	if err != nil {
		return err
	}
	defer stopHealth(hs)
	if cfg.Health != nil && hs != nil {
		cfg.Health(hs)
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
	prov := provision.Config{Prefix: cfg.Prefix, Replicas: cfg.Replicas, LeaderTTL: cfg.LeaderTTL,
		EventCapture: cfg.EventCapture || cfg.Dev}
	if err := provisioning.Wait(ctx, log, js, prov); err != nil {
		return stopped(ctx, err)
	}
	// Whatever is started from here on is stopped on every way out: a
	// later step failing, a signal while waiting, or the normal shutdown
	// below (which stops them first, in order; Stop twice is a no-op).
	var running stopStack
	defer func() { running.stopAll() }()
	wait := startLoop(log, nc)
	var co *coordinator.Coordinator
	err = wait.Do(ctx, "start coordinator", func(actx context.Context) error {
		c, err := coordinator.New(nc, coordinator.Config{Prefix: cfg.Prefix, Shards: cfg.Shards, AckWait: cfg.AckWait, DeferStart: cfg.DeferStart, Logger: log,
			RunRetention: cfg.RunRetention, RunStoreRetention: cfg.RunStoreRetention,
			Metrics: registerer(cfg.Metrics), Tracing: cfg.Tracing})
		if err != nil {
			return retry.Permanent(err)
		}
		if err := c.Start(actx); err != nil {
			return err // a failed Start has stopped what it started
		}
		co = c
		running.push(c.Stop)
		return nil
	})
	if err != nil {
		return stopped(ctx, err)
	}
	// Streams a server restart loses (the in-memory events capture
	// stream, when configured) come back on every reconnect.
	unwatch := provisioning.Watch(nc, js, prov, log)
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
			return err
		}
		sch = s
		running.push(s.Stop)
		return nil
	})
	if err != nil {
		return stopped(ctx, err)
	}
	var w *worker.Worker
	if cfg.Dev {
		reg, wfs := demoWorker(cfg.Extra)
		w, err = startWorker(ctx, wait, nc, worker.Config{Prefix: cfg.Prefix, Registry: reg, Logger: log,
			Workflows: wfs, Metrics: registerer(cfg.Metrics), Tracing: cfg.Tracing})
		if err != nil {
			return stopped(ctx, err)
		}
		running.push(w.Stop)
		trigger, watch := devHints(cfg.Prefix, srv.ClientURL()) // hints.go
		log.Info("dev mode: connect other processes with -s "+srv.ClientURL(), "trigger", trigger, "watch", watch)
		if unsub, err := logRuns(log, nc, cfg.Prefix); err == nil { // runlog.go
			defer unsub()
		}
	}
	dash, err := startDashboard(ctx, log, nc, cfg)
	if err != nil {
		return err
	}
	if dash != nil {
		defer stopQuietly(dash.Stop)
	}
	setReady(hs, nc, js, prov, nil)
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
	notReady(hs)
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
		demoRun(ctx, log, cl, cfg.Tracing)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// demoRun triggers one demo run and waits for it. With tracing on, the
// run is a trace under a "cano.demo" span (as a program's own client call
// would be), so dev mode shows traces too.
func demoRun(ctx context.Context, log *slog.Logger, cl *client.Client, tp trace.TracerProvider) {
	if tp != nil {
		var span trace.Span
		ctx, span = tracectx.Tracer(tp).Start(ctx, "cano.demo", trace.WithAttributes(attribute.String("cano.workflow", demo.WorkflowName)))
		defer span.End()
	}
	id, err := cl.Trigger(ctx, demo.WorkflowName, nil)
	if err == nil {
		var out *client.Run
		out, err = cl.Await(ctx, id)
		if err == nil {
			var joined string
			_ = out.Output(&joined)
			// The run log (runlog.go) has already said it finished: one
			// line per demo run at info.
			log.Debug("demo run completed", "run_id", id, "path", out.Path, "output", joined)
		}
	}
	if err != nil && ctx.Err() == nil {
		log.Warn("demo run", "err", err)
	}
}

// startDashboard starts the dashboard when cfg asks for one (nil, nil
// when not) and logs its address.
func startDashboard(ctx context.Context, log *slog.Logger, nc *nats.Conn, cfg CoordinatorConfig) (*dashboard.Server, error) {
	addr := cfg.HTTP
	if addr == "" && cfg.Dev {
		addr = DashboardAddrDev
	}
	if addr == "" || addr == "off" {
		return nil, nil
	}
	d, err := dashboard.New(nc, dashboard.Config{Addr: addr, Token: cfg.HTTPToken, User: cfg.HTTPUser,
		Password: cfg.HTTPPassword, Prefix: cfg.Prefix, IndexMaxRuns: cfg.HTTPIndexMaxRuns, Logger: log})
	if err != nil {
		return nil, dashboard.FlagError(fmt.Errorf("-http: %w", err), "-", "http", addr)
	}
	if err := d.Start(ctx); err != nil {
		if cfg.HTTP == "" {
			// The dev-mode default address is busy (another dev
			// coordinator, say): run without a dashboard.
			log.Warn("dev mode: no dashboard; pass -http with a free address", "err", err)
			return nil, nil
		}
		return nil, dashboard.FlagError(err, "-", "http", addr)
	}
	switch {
	case cfg.HTTPToken != "":
		// The token is not logged: the one who set it knows it.
		log.Info("dashboard: open http://" + d.Addr() + "/login?token=YOUR_TOKEN (the -http-token or CANO_HTTP_TOKEN value) to sign in")
	default:
		log.Info("dashboard: open http://" + d.Addr() + "/")
	}
	if cfg.HTTPReady != nil {
		cfg.HTTPReady(d.Addr())
	}
	return d, nil
}

// WorkerConfig is what cmd/worker's flags fill in.
type WorkerConfig struct {
	// Extra, when set, adds task kinds and workflows to the demo worker
	// (tests: the fault-injection kinds, see internal/wire/faults).
	Extra       func(*fsm.Registry) []worker.Definer
	NATS        cli.NATSConfig
	Prefix      string
	ID          string
	Concurrency int
	AckWait     time.Duration
	// MetricsAddr is the host:port serving /healthz and /readyz; empty
	// serves none.
	MetricsAddr string
	// NoProvision makes the worker wait for the streams and buckets a
	// coordinator creates instead of creating or updating them itself, for
	// a NATS user that may not manage streams (deploy/nats's worker role).
	NoProvision bool
	// Health, when set, receives the health server once it listens (tests).
	Health func(*health.Server)
	// Metrics, when set, gets the worker's metrics (see CoordinatorConfig.Metrics).
	Metrics *prometheus.Registry
	// Tracing, when set, records a span per task attempt of a traced run
	// (nil: off); cmd/worker builds it from the OTEL_* variables.
	Tracing trace.TracerProvider
	// Ready, when set, is called once the worker runs (tests, canobench).
	Ready func()
}

// SleepyTaskDuration is how long the demo "sleepy" workflow's task sleeps.
const SleepyTaskDuration = 300 * time.Millisecond

// SleepySplitBranchDuration is how long each branch of the demo
// "sleepy_split" workflow sleeps.
const SleepySplitBranchDuration = 1500 * time.Millisecond

// demoWorker is the demo worker's registry and workflows, plus what the
// build (the fault suite's canofaults tag) and extra add.
func demoWorker(extra func(*fsm.Registry) []worker.Definer) (*fsm.Registry, []worker.Definer) {
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	demo.RegisterSplits(reg)
	wfs := []worker.Definer{demo.Workflow(), demo.OneTask(), demo.Chain(), demo.Sleepy(SleepyTaskDuration),
		demo.SleepySplit(SleepySplitBranchDuration)}
	wfs = append(wfs, builtinExtra(reg)...)
	if extra != nil {
		wfs = append(wfs, extra(reg)...)
	}
	return reg, wfs
}

// RunWorker runs the demo worker until ctx ends. Users' own binaries build
// a worker.Worker the same way with their own registry and workflows. It
// waits for the broker, and re-provisions after a reconnect, as
// [RunCoordinator] does.
func RunWorker(ctx context.Context, log *slog.Logger, cfg WorkerConfig, shutdown time.Duration) error {
	if cfg.Metrics == nil && servesMetrics(cfg.MetricsAddr, false) {
		cfg.Metrics = NewMetricsRegistry()
	}
	hs, err := startHealth(ctx, log, cfg.MetricsAddr, false, cfg.Metrics)
	if err != nil {
		return err
	}
	defer stopHealth(hs)
	if cfg.Health != nil && hs != nil {
		cfg.Health(hs)
	}
	nc, err := cli.ConnectWait(ctx, log, cfg.NATS, nats.Name("cano-worker"))
	if err != nil {
		return stopped(ctx, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// A worker creates what is missing and leaves the rest as the
	// coordinators set it (replicas, -leader-ttl, limits), waiting for the
	// broker like the coordinator.
	prov := provision.Config{Prefix: cfg.Prefix, CreateOnly: true}
	if cfg.NoProvision {
		err = waitProvisioned(ctx, log, js, prov)
	} else {
		err = provisioning.Wait(ctx, log, js, prov)
	}
	if err != nil {
		return stopped(ctx, err)
	}
	reg, wfs := demoWorker(cfg.Extra)
	w, err := startWorker(ctx, startLoop(log, nc), nc, worker.Config{Prefix: cfg.Prefix, ID: cfg.ID,
		Registry: reg, Logger: log, Concurrency: cfg.Concurrency, AckWait: cfg.AckWait,
		Workflows: wfs, Metrics: registerer(cfg.Metrics), Tracing: cfg.Tracing})
	if err != nil {
		return stopped(ctx, err)
	}
	if !cfg.NoProvision {
		unwatch := provisioning.Watch(nc, js, prov, log)
		defer unwatch()
	}
	setReady(hs, nc, js, prov, func(ctx context.Context) error {
		if st := w.Health(ctx); st.State == kvstore.StateUnhealthy {
			return fmt.Errorf("worker resources %s", st)
		}
		return nil
	})
	if cfg.Ready != nil {
		cfg.Ready()
	}
	<-ctx.Done()
	notReady(hs) // draining: take no new traffic
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
		Permanent:      provisioning.Permanent,
		Denied:         cli.DeniedSince(nc),
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
			if errors.Is(err, worker.ErrDefinitionTooLarge) {
				return retry.Permanent(err) // the same definition will not fit later
			}
			return err // a failed Start has stopped what it started
		}
		w = x
		return nil
	})
	return w, err
}

// stopQuietly stops a component a later failure leaves unused, bounded by
// a short deadline.
func stopQuietly(stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = stop(ctx)
}

// stopStack holds the Stop of every component started so far.
type stopStack []func(context.Context) error

func (s *stopStack) push(stop func(context.Context) error) { *s = append(*s, stop) }

// stopAll stops them in the reverse order of their start, each quietly
// (a component already stopped returns at once).
func (s stopStack) stopAll() {
	for i := len(s) - 1; i >= 0; i-- {
		stopQuietly(s[i])
	}
}

// stopped is err, or nil when ctx ended: a signal during the wait for the
// broker is a normal shutdown, not a failure.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, retry.ErrPermanent) && !provisioning.Permanent(err) {
		return nil
	}
	return err
}
