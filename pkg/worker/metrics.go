package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/prom"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Metrics. Registered on Config.Metrics when it is set; labels are
// low-cardinality only (task kinds, outcomes, breaker names), never run ids:
//
//	cano_worker_task_attempts_total{kind,outcome}       outcome: succeeded, failed, timeout, cancelled
//	cano_worker_task_retries_total{kind}                failed attempts that will be retried
//	cano_worker_task_timeouts_total{kind}               attempts that exceeded their attempt timeout
//	cano_worker_task_duration_seconds{kind,outcome}     how long an attempt's task ran
//	cano_worker_circuit_open_total{kind}                commands refused by an open breaker
//	cano_worker_breaker_state{breaker}                  last state this worker saw: 0 closed, 1 half-open, 2 open
//	cano_worker_breaker_transitions_total{breaker,to}   transitions this worker made
//	cano_worker_dead_letters_total{source}              commands dead-lettered (source "task")
//	cano_worker_tasks_in_flight                         attempts running now
//	cano_worker_consumer_pending{consumer}              commands not yet delivered, asked on scrape (same on every instance: max)
//	cano_worker_consumer_ack_pending{consumer}          delivered, not yet settled

// ScrapeTimeout bounds the consumer queries of one scrape.
const ScrapeTimeout = 2 * time.Second

// TaskDurationBuckets are the task duration histogram's buckets, in
// seconds: from 1 ms to 10 minutes.
var TaskDurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Attempt outcomes, the outcome label.
const (
	outcomeSucceeded = "succeeded"
	outcomeFailed    = "failed"
	outcomeTimeout   = "timeout"
	outcomeCancelled = "cancelled"
)

type metrics struct {
	attempts     *prometheus.CounterVec
	retries      *prometheus.CounterVec
	timeouts     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	circuitOpen  *prometheus.CounterVec
	breakerState *prometheus.GaugeVec
	breakerMoves *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	inFlight     prometheus.Gauge
}

func newMetrics(w *Worker, reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "cano", "worker"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	m := &metrics{
		attempts: counter("task_attempts_total", "Task attempts made, by kind and outcome (succeeded, failed, timeout, cancelled).", "kind", "outcome"),
		retries:  counter("task_retries_total", "Failed task attempts that will be retried, by kind.", "kind"),
		timeouts: counter("task_timeouts_total", "Task attempts that exceeded their attempt timeout, by kind.", "kind"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "task_duration_seconds", Help: "How long an attempt's task ran, by kind and outcome.",
			Buckets: TaskDurationBuckets}, []string{"kind", "outcome"}),
		circuitOpen: counter("circuit_open_total", "Task commands refused because their breaker was open, by kind.", "kind"),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "breaker_state", Help: "The last state of a breaker this worker saw change: 0 closed, 1 half-open, 2 open."},
			[]string{"breaker"}),
		breakerMoves: counter("breaker_transitions_total", "Breaker transitions made by this worker, by breaker and new state.", "breaker", "to"),
		deadLetters:  counter("dead_letters_total", "Task commands dead-lettered, by source.", "source"),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "tasks_in_flight", Help: "Task attempts running now."}),
	}
	pending := prom.NewPending(w.js, prom.PendingConfig{Namespace: ns, Subsystem: sub, Label: "consumer",
		PendingHelp:    "Task commands of a consumer (queue and kind) not yet delivered (asked of the server on scrape: every instance reports the same count, aggregate with max).",
		AckPendingHelp: "Task commands delivered and not yet settled, by consumer (asked of the server on scrape: every instance reports the same count, aggregate with max).",
		Timeout:        ScrapeTimeout,
		Consumers: func() []prom.Consumer {
			stream := layout.TasksStream(w.names)
			var out []prom.Consumer
			for _, name := range w.consumerNames() {
				out = append(out, prom.Consumer{Stream: stream, Name: name, Label: name})
			}
			return out
		}})
	// A second coordinator or worker on the same registerer (a start
	// retried in one process) shares the first one's collectors.
	var err error
	if m.attempts, err = prom.Register(reg, m.attempts); err != nil {
		return nil, err
	}
	if m.retries, err = prom.Register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.timeouts, err = prom.Register(reg, m.timeouts); err != nil {
		return nil, err
	}
	if m.duration, err = prom.Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.circuitOpen, err = prom.Register(reg, m.circuitOpen); err != nil {
		return nil, err
	}
	if m.breakerState, err = prom.Register(reg, m.breakerState); err != nil {
		return nil, err
	}
	if m.breakerMoves, err = prom.Register(reg, m.breakerMoves); err != nil {
		return nil, err
	}
	if m.deadLetters, err = prom.Register(reg, m.deadLetters); err != nil {
		return nil, err
	}
	m.deadLetters.WithLabelValues("task") // at 0 from the start, as the coordinator's
	if m.inFlight, err = prom.Register(reg, m.inFlight); err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{pending} {
		if _, err := prom.Register(reg, c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// attemptStarted and attemptEnded bracket one attempt.
func (m *metrics) attemptStarted() {
	if m != nil {
		m.inFlight.Inc()
	}
}

func (m *metrics) attemptEnded(cmd *protocol.TaskCommand, err error, took time.Duration) {
	if m == nil {
		return
	}
	m.inFlight.Dec()
	outcome := attemptOutcome(err)
	kind := cmd.Task.Kind
	m.attempts.WithLabelValues(kind, outcome).Inc()
	m.duration.WithLabelValues(kind, outcome).Observe(took.Seconds())
	if outcome == outcomeTimeout {
		m.timeouts.WithLabelValues(kind).Inc()
	}
}

// attemptOutcome names the outcome label of an attempt that ended with err.
func attemptOutcome(err error) string {
	switch {
	case err == nil:
		return outcomeSucceeded
	case errors.Is(err, fsm.ErrTimeout):
		return outcomeTimeout
	case errors.Is(err, fsm.ErrCancelled), errors.Is(err, context.Canceled), errors.Is(err, errCancelledByRun):
		return outcomeCancelled
	default:
		return outcomeFailed
	}
}

func (m *metrics) retried(cmd *protocol.TaskCommand) {
	if m != nil {
		m.retries.WithLabelValues(cmd.Task.Kind).Inc()
	}
}

func (m *metrics) refusedOpen(cmd *protocol.TaskCommand) {
	if m != nil {
		m.circuitOpen.WithLabelValues(cmd.Task.Kind).Inc()
	}
}

func (m *metrics) deadLetter(source string) {
	if m != nil {
		m.deadLetters.WithLabelValues(source).Inc()
	}
}

// breakerValue is a breaker state as the breaker_state gauge's value.
func breakerValue(s breaker.State) float64 {
	switch s {
	case breaker.StateOpen:
		return 2
	case breaker.StateClosed:
		return 0
	default:
		return 1
	}
}

// onBreaker returns the OnTransitionFunc of the worker's default
// breakers, calling next after counting (nil without metrics: next).
func (m *metrics) onBreaker(next func(breaker.Transition)) func(breaker.Transition) {
	if m == nil {
		return next
	}
	return func(t breaker.Transition) {
		m.breakerState.WithLabelValues(t.Name).Set(breakerValue(t.To))
		m.breakerMoves.WithLabelValues(t.Name, string(t.To)).Inc()
		if next != nil {
			next(t)
		}
	}
}

// consumerNames lists the durable names of the task consumers this worker
// pulls from, recorded as they are created (consumeKind).
func (w *Worker) consumerNames() []string {
	w.consumerMu.Lock()
	defer w.consumerMu.Unlock()
	return append([]string(nil), w.consumerList...)
}

func (w *Worker) addConsumerName(name string) {
	w.consumerMu.Lock()
	defer w.consumerMu.Unlock()
	w.consumerList = append(w.consumerList, name)
}

// consumerSet is embedded in Worker: the consumer names for the scrape.
type consumerSet struct {
	consumerMu   sync.Mutex
	consumerList []string
}
