package scheduler

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cano-nats/cano/internal/prom"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Metrics. Registered on Config.Metrics when it is set; flows are labelled
// by id (a configured, bounded set), never by run:
//
//	cano_scheduler_fires_total{flow}   runs a flow started
//	cano_scheduler_skips_total{flow}   slots skipped (the flow was running, backing off or tripped)
//	cano_scheduler_trips_total{flow}   times a flow tripped (failure streak at its limit)
//	cano_scheduler_leader              1 while this instance leads, else 0
//	cano_scheduler_flows_paused        flows paused (Client.Pause), as the leader reads them; 0 elsewhere

type metrics struct {
	fires, skips, trips *prometheus.CounterVec
	paused              prometheus.Gauge
}

func newMetrics(s *Scheduler, reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "cano", "scheduler"
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, []string{"flow"})
	}
	m := &metrics{
		fires: counter("fires_total", "Runs a flow started."),
		skips: counter("skips_total", "Slots a flow skipped (it was running, backing off or tripped)."),
		trips: counter("trips_total", "Times a flow tripped: its failure streak reached the limit."),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "flows_paused",
			Help: "Flows paused (their schedule fires nothing until resumed), as the leader reads them; 0 on an instance not leading."}),
	}
	leader := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "leader",
		Help: "1 while this scheduler instance leads, else 0."}, func() float64 {
		if _, ok := s.Leading(); ok {
			return 1
		}
		return 0
	})
	// A second scheduler on the same registerer shares the counters and
	// the paused gauge (the leader gauge is the first one's).
	var err error
	for _, c := range []**prometheus.CounterVec{&m.fires, &m.skips, &m.trips} {
		if *c, err = prom.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	if m.paused, err = prom.Register(reg, m.paused); err != nil {
		return nil, err
	}
	if _, err := prom.Register[prometheus.Collector](reg, leader); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) fired(flow string) {
	if m != nil {
		m.fires.WithLabelValues(flow).Inc()
	}
}

func (m *metrics) skipped(flow string) {
	if m != nil {
		m.skips.WithLabelValues(flow).Inc()
	}
}

// ended counts a trip: a run ended leaving its flow tripped.
func (m *metrics) ended(flow string, phase protocol.FlowPhase) {
	if m != nil && phase == protocol.FlowTripped {
		m.trips.WithLabelValues(flow).Inc()
	}
}

// setPaused records how many flows are paused.
func (m *metrics) setPaused(n int) {
	if m != nil {
		m.paused.Set(float64(n))
	}
}
