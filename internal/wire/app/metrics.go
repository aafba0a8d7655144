package app

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cano-nats/cano/internal/version"
)

// NewMetricsRegistry returns the registry a coordinator or worker process
// registers its metrics on (pkg/coordinator and pkg/worker metrics.go list
// them), with the Go runtime and process collectors and cano_build_info. Set it as
// CoordinatorConfig.Metrics or WorkerConfig.Metrics and serve
// [MetricsHandler] at /metrics on -metrics-addr.
func NewMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b := version.Of()
	info := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cano", Name: "build_info",
		Help:        "The build this process runs: always 1; its labels say which (join on them to follow a rollout).",
		ConstLabels: prometheus.Labels{"version": b.Version, "goversion": b.GoVersion, "revision": b.Revision}})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}

// MetricsHandler serves reg in the Prometheus exposition format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// registerer is reg as a prometheus.Registerer, nil (no metrics) when reg
// is nil: a nil *Registry in the interface would not be nil.
func registerer(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return reg
}
