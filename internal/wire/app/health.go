package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cano-nats/cano/internal/retry"
	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/internal/wire/health"
	"github.com/cano-nats/cano/pkg/provision"
)

// DevMetricsAddrDefault is where dev mode serves /healthz, /readyz and /metrics when
// -metrics-addr is not given.
const DevMetricsAddrDefault = "127.0.0.1:9090"

// metricsAddrOff turns the dev-mode health listener off.
const metricsAddrOff = "off"

// startHealth starts the health listener on addr (dev mode: on
// DevMetricsAddrDefault when addr is empty). It returns nil when none is
// wanted. An explicit address that cannot be bound is an error; the dev
// default that cannot be bound (another dev process has it) is logged and
// skipped.
//
// When metrics is not nil, /metrics serves it on the same listener.
func startHealth(ctx context.Context, log *slog.Logger, addr string, dev bool, metrics *prometheus.Registry) (*health.Server, error) {
	implicit := false
	switch {
	case addr == metricsAddrOff:
		return nil, nil
	case addr == "" && dev:
		addr, implicit = DevMetricsAddrDefault, true
	case addr == "":
		return nil, nil
	}
	hs := health.New(health.Config{Addr: addr, Logger: log})
	if metrics != nil {
		hs.Handle(MetricsPath, MetricsHandler(metrics))
	}
	if err := hs.Start(ctx); err != nil {
		if implicit {
			log.Warn("dev mode: not serving /healthz, /readyz and /metrics; give -metrics-addr a free address", "err", err)
			return nil, nil
		}
		return nil, retry.Permanent(err)
	}
	u := "http://" + hs.Addr()
	if metrics != nil {
		log.Info("health and metrics endpoints", "healthz", u+health.LivePath, "readyz", u+health.ReadyPath, "metrics", u+MetricsPath)
	} else {
		log.Info("health endpoints", "healthz", u+health.LivePath, "readyz", u+health.ReadyPath)
	}
	return hs, nil
}

// MetricsPath is where -metrics-addr serves the Prometheus metrics.
const MetricsPath = "/metrics"

// servesMetrics says whether -metrics-addr (addr) serves anything: an
// address, or dev mode's default.
func servesMetrics(addr string, dev bool) bool {
	return addr != metricsAddrOff && (addr != "" || dev)
}

// stopHealth stops hs (nil: nothing) within a short deadline.
func stopHealth(hs *health.Server) {
	if hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hs.Stop(ctx)
}

// readyStreams are the streams and buckets (as KV_<bucket> streams) a
// process needs before it reports ready: every one provision makes.
func readyStreams(prov provision.Config) []string {
	var names []string
	for _, s := range provision.Streams(prov) {
		names = append(names, s.Name)
	}
	for _, b := range provision.Buckets(prov) {
		names = append(names, "KV_"+b.Bucket)
	}
	return names
}

// setReady makes hs (nil: nothing) report ready while nc is connected, the
// streams and buckets exist and extra (nil: none) passes.
func setReady(hs *health.Server, nc *nats.Conn, js jetstream.JetStream, prov provision.Config, extra health.CheckFunc) {
	if hs == nil {
		return
	}
	connected, rest := health.Connected(nc), health.All(health.Streams(js, readyStreams(prov)), extra)
	hs.SetReady(func(ctx context.Context) error {
		if err := connected(ctx); err != nil {
			return err // the streams cannot be read either: not worth the wait
		}
		return rest(ctx)
	})
}

// notReady makes hs (nil: nothing) report not ready, while shutting down.
func notReady(hs *health.Server) {
	if hs != nil {
		hs.SetReady(func(context.Context) error { return errShuttingDown })
	}
}

var errShuttingDown = errors.New("shutting down")

// waitProvisioned waits until every stream and bucket exists, for a
// worker that may not create them (-provision=false).
func waitProvisioned(ctx context.Context, log *slog.Logger, js jetstream.JetStream, prov provision.Config) error {
	check := health.Streams(js, readyStreams(prov))
	loop := retry.Loop{Log: log, URL: func() string {
		if u := js.Conn().ConnectedUrlRedacted(); u != "" {
			return u
		}
		return "the server (disconnected)"
	}, Denied: cli.DeniedSince(js.Conn()), AttemptTimeout: provision.TimeoutDefault}
	return loop.Do(ctx, "wait for streams and buckets", check)
}
