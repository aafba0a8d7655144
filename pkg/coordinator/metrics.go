package coordinator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/prom"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Metrics. Registered on Config.Metrics when it is set; labels are
// low-cardinality only (workflow names, statuses, input sources), never run
// ids:
//
//	cano_coordinator_runs_scheduled_total{workflow}         runs triggered to start later (TriggerOpts.StartAt)
//	cano_coordinator_runs_started_total{workflow}
//	cano_coordinator_runs_finished_total{workflow,status}   status: completed, failed, cancelled
//	cano_coordinator_transitions_total{workflow}            moves from one state to the next (exits included)
//	cano_coordinator_run_duration_seconds{workflow,status}  trigger (or scheduled start) to end
//	cano_coordinator_dead_letters_total{source}             trigger, result, control, timer
//	cano_coordinator_runs_stalled_total                     runs the stall check re-drove (Stats.Stalled)
//	cano_coordinator_timers_unscheduled_total{outcome}      moot timers: removed, dropped (queue full), failed
//	cano_coordinator_consumer_pending{stream}               messages not yet delivered, asked on scrape (same on every instance: max)
//	cano_coordinator_consumer_ack_pending{stream}           delivered, not yet acknowledged

// ScrapeTimeout bounds the consumer queries of one scrape.
const ScrapeTimeout = 2 * time.Second

// RunDurationBuckets are the run duration histogram's buckets, in seconds:
// from 5 ms (a one-task run) to an hour.
var RunDurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

type metrics struct {
	scheduled   *prometheus.CounterVec
	started     *prometheus.CounterVec
	finished    *prometheus.CounterVec
	transitions *prometheus.CounterVec
	runDuration *prometheus.HistogramVec
	deadLetters *prometheus.CounterVec
}

func newMetrics(c *Coordinator, reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "cano", "coordinator"
	m := &metrics{
		scheduled: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "runs_scheduled_total", Help: "Runs triggered to start later, by workflow (counted again in runs_started_total when they start)."}, []string{"workflow"}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "runs_started_total", Help: "Runs started, by workflow."}, []string{"workflow"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "runs_finished_total", Help: "Runs that ended, by workflow and status (completed, failed, cancelled)."},
			[]string{"workflow", "status"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "transitions_total", Help: "Moves from one state to the next (into an exit state included), by workflow."}, []string{"workflow"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "run_duration_seconds", Help: "Time from a run's trigger (for a run that started later, its scheduled start) to its end, by workflow and status.",
			Buckets: RunDurationBuckets}, []string{"workflow", "status"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dead_letters_total", Help: "Inputs dead-lettered, by source (trigger, result, control, timer)."},
			[]string{"source"}),
	}
	stalled := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
		Name: "runs_stalled_total", Help: "Runs the stall check found stalled and re-drove."},
		func() float64 { return float64(c.stalled.Load()) })
	collectors := []prometheus.Collector{stalled}
	for i, outcome := range unscheduleOutcome {
		collectors = append(collectors, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "timers_unscheduled_total", Help: "Durable timers a step made moot (a run's total timeout once it ended, a join timeout once its split ended, a start once the run was cancelled), by outcome: removed from the timers stream, or left to fire (and change nothing) because the queue of removals was full (dropped) or the removal failed (failed).",
			ConstLabels: prometheus.Labels{"outcome": outcome}},
			func() float64 { return float64(c.unscheduled[i].Load()) }))
	}
	n := c.names
	pending := prom.NewPending(c.js, prom.PendingConfig{Namespace: ns, Subsystem: sub, Label: "stream",
		PendingHelp:    "Messages of an input stream not yet delivered to the coordinators' consumer (asked of the server on scrape: every instance reports the same count, aggregate with max).",
		AckPendingHelp: "Messages delivered to the coordinators' consumer and not yet acknowledged (asked of the server on scrape: every instance reports the same count, aggregate with max).",
		Timeout:        ScrapeTimeout,
		Consumers: func() []prom.Consumer {
			var out []prom.Consumer
			for _, stream := range []string{layout.TriggersStream(n), layout.ResultsStream(n), layout.ControlStream(n), layout.TimersStream(n)} {
				out = append(out, prom.Consumer{Stream: stream, Name: ConsumerDefault, Label: stream})
			}
			return out
		}})
	// A second coordinator or worker on the same registerer (a start
	// retried in one process) shares the first one's collectors.
	var err error
	if m.scheduled, err = prom.Register(reg, m.scheduled); err != nil {
		return nil, err
	}
	if m.started, err = prom.Register(reg, m.started); err != nil {
		return nil, err
	}
	if m.finished, err = prom.Register(reg, m.finished); err != nil {
		return nil, err
	}
	if m.transitions, err = prom.Register(reg, m.transitions); err != nil {
		return nil, err
	}
	if m.runDuration, err = prom.Register(reg, m.runDuration); err != nil {
		return nil, err
	}
	if m.deadLetters, err = prom.Register(reg, m.deadLetters); err != nil {
		return nil, err
	}
	// Every source's series exists from the start, at 0: an alert on
	// increase() sees the first dead letter, and a sum over sources is
	// never empty.
	for _, source := range []string{"trigger", "result", "control", "timer"} {
		m.deadLetters.WithLabelValues(source)
	}
	for _, c := range append(collectors, pending) {
		if _, err := prom.Register(reg, c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// committed counts what a written transition did: the events fx carries
// are new (a re-publish of what a record owes does not come here).
func (m *metrics) committed(rec *protocol.RunRecord, fx *engine.Effects) {
	if m == nil {
		return
	}
	for i := range fx.Events {
		ev := &fx.Events[i]
		switch ev.Type {
		case protocol.EventScheduled:
			m.scheduled.WithLabelValues(rec.Workflow).Inc()
		case protocol.EventStarted:
			m.started.WithLabelValues(rec.Workflow).Inc()
		case protocol.EventState:
			m.transitions.WithLabelValues(rec.Workflow).Inc()
		case protocol.EventCompleted, protocol.EventFailed, protocol.EventCancelled:
			if ev.Type == protocol.EventCompleted {
				m.transitions.WithLabelValues(rec.Workflow).Inc() // into the exit state
			}
			status := string(rec.Status)
			m.finished.WithLabelValues(rec.Workflow, status).Inc()
			if from := max(rec.CreatedAt, rec.StartAt); from > 0 && rec.UpdatedAt >= from {
				m.runDuration.WithLabelValues(rec.Workflow, status).Observe(time.Duration(rec.UpdatedAt - from).Seconds())
			}
		}
	}
}

func (m *metrics) deadLetter(source string) {
	if m != nil {
		m.deadLetters.WithLabelValues(source).Inc()
	}
}
