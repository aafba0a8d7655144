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

	"github.com/cano-nats/cano/internal/deadline"
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
// answer within the timeout, gives no sample. A scrape never waits longer
// than the timeout, even when the queries block past it (a NATS
// connection that is reconnecting holds its calls while it dials): the
// scrape then has no consumer samples, and the next one waits for the
// queries still running rather than starting more.
type Pending struct {
	cfg                 PendingConfig
	pending, ackPending *prometheus.Desc
	// query asks for one consumer's counts; a variable for tests.
	query func(ctx context.Context, c Consumer) (pending, ackPending uint64, err error)

	scans deadline.Flight[[]prometheus.Metric] // the scan in flight
}

var _ prometheus.Collector = (*Pending)(nil)

// NewPending returns the collector of cfg's consumers on js.
func NewPending(js jetstream.JetStream, cfg PendingConfig) *Pending {
	labels := []string{cfg.Label}
	return &Pending{cfg: cfg,
		pending: prometheus.NewDesc(prometheus.BuildFQName(cfg.Namespace, cfg.Subsystem, "consumer_pending"),
			cfg.PendingHelp, labels, nil),
		ackPending: prometheus.NewDesc(prometheus.BuildFQName(cfg.Namespace, cfg.Subsystem, "consumer_ack_pending"),
			cfg.AckPendingHelp, labels, nil),
		query: func(ctx context.Context, c Consumer) (uint64, uint64, error) {
			cons, err := js.Consumer(ctx, c.Stream, c.Name) // reads the consumer's info
			if err != nil {
				return 0, 0, err
			}
			info := cons.CachedInfo()
			return info.NumPending, uint64(info.NumAckPending), nil
		},
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
	samples, _ := p.scans.Do(ctx, p.cfg.Timeout, p.scan) // none this time when it did not answer in time
	for _, m := range samples {
		ch <- m
	}
}

// scan asks every consumer for its counts, within ctx as far as the
// queries honour it.
func (p *Pending) scan(ctx context.Context) []prometheus.Metric {
	var out []prometheus.Metric
	for _, c := range p.cfg.Consumers() {
		pending, ackPending, err := p.query(ctx, c)
		if err != nil {
			continue // not started, or the server is away: no sample
		}
		out = append(out,
			prometheus.MustNewConstMetric(p.pending, prometheus.GaugeValue, float64(pending), c.Label),
			prometheus.MustNewConstMetric(p.ackPending, prometheus.GaugeValue, float64(ackPending), c.Label))
	}
	return out
}
