// Package prom holds what the coordinator's, worker's and scheduler's
// Prometheus metrics share: registering a collector that another instance
// in the process may have registered already, and the scrape-time gauges
// of JetStream consumers' pending counts.
package prom

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg, or returns the equal collector already
// registered there: a second coordinator, worker or scheduler on the same
// registerer (a start retried in one process) shares the first one's.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}

// Consumer is one JetStream consumer whose pending counts a scrape asks
// for, and the label value its samples carry.
type Consumer struct {
	Stream, Name, Label string
}

// PendingConfig configures a [Pending] collector.
type PendingConfig struct {
	// Namespace and Subsystem prefix the two gauges' names:
	// <ns>_<sub>_consumer_pending and <ns>_<sub>_consumer_ack_pending.
	Namespace, Subsystem string
	// Label names the one label (Consumer.Label's value).
	Label string
	// PendingHelp and AckPendingHelp are the gauges' help texts.
	PendingHelp, AckPendingHelp string
	// Timeout bounds the consumer queries of one scrape.
	Timeout time.Duration
	// Consumers lists the consumers to ask, at each scrape.
	Consumers func() []Consumer
}

// Pending asks consumers for their pending and ack-pending counts on each
// scrape. A consumer that does not exist yet, or a server that does not
// answer within the timeout, gives no sample.
type Pending struct {
	js                  jetstream.JetStream
	cfg                 PendingConfig
	pending, ackPending *prometheus.Desc
}

var _ prometheus.Collector = (*Pending)(nil)

// NewPending returns the collector of cfg's consumers on js.
func NewPending(js jetstream.JetStream, cfg PendingConfig) *Pending {
	labels := []string{cfg.Label}
	return &Pending{js: js, cfg: cfg,
		pending: prometheus.NewDesc(prometheus.BuildFQName(cfg.Namespace, cfg.Subsystem, "consumer_pending"),
			cfg.PendingHelp, labels, nil),
		ackPending: prometheus.NewDesc(prometheus.BuildFQName(cfg.Namespace, cfg.Subsystem, "consumer_ack_pending"),
			cfg.AckPendingHelp, labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (p *Pending) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.pending
	ch <- p.ackPending
}

// Collect implements prometheus.Collector.
func (p *Pending) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	for _, c := range p.cfg.Consumers() {
		cons, err := p.js.Consumer(ctx, c.Stream, c.Name)
		if err != nil {
			continue // not started, or the server is away: no sample
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(p.pending, prometheus.GaugeValue, float64(info.NumPending), c.Label)
		ch <- prometheus.MustNewConstMetric(p.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), c.Label)
	}
}
