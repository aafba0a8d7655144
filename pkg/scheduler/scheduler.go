package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/leader"
	"github.com/cano-nats/cano/internal/startstop"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Defaults for [Config].
const (
	// DrainTimeoutDefault is how long Stop waits for running flows (cano's
	// hard-coded 30 s, here configurable).
	DrainTimeoutDefault = 30 * time.Second
	// ReconcileIntervalDefault is how often the leader checks the run
	// records of running flows, in case it missed a terminal event.
	ReconcileIntervalDefault = 5 * time.Second
	// MisfireThresholdDefault is how late the leader may fire a slot before
	// it counts as missed.
	MisfireThresholdDefault = 5 * time.Second
	// catchUpScanLimit bounds the slots scanned to find the latest missed one.
	catchUpScanLimit = 1_000_000
)

// Clock tells the time. A nil Clock in [Config] means the real clock.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to a [Clock].
type ClockFunc func() time.Time

// Now calls f().
func (f ClockFunc) Now() time.Time { return f() }

// Config configures a [Scheduler]. The zero value uses the defaults.
type Config struct {
	// Prefix of every name. Defaults to protocol.PrefixDefault.
	Prefix string
	// ID identifies this instance in the leader election. Defaults to a
	// random id.
	ID string
	// LeaderTTL is the lease TTL; zero means the leader bucket's TTL
	// (provision.Config.LeaderTTL), any other value must equal it.
	LeaderTTL time.Duration
	// RenewInterval is how often the leader renews its lease. Defaults to
	// LeaderTTL/3; at most LeaderTTL/3.
	RenewInterval time.Duration
	// DrainTimeout bounds how long Stop waits for running flows to finish
	// before it releases leadership. Defaults to DrainTimeoutDefault; -1
	// does not wait.
	DrainTimeout time.Duration
	// ReconcileInterval is how often the leader reads the run records of
	// running flows to catch missed terminal events. Defaults to
	// ReconcileIntervalDefault.
	ReconcileInterval time.Duration
	// MisfireThreshold is how late a leader still fires a cron slot it was
	// slow to reach; beyond it the slot is missed. Defaults to
	// MisfireThresholdDefault.
	MisfireThreshold time.Duration
	// Timeout bounds each KV or publish call. Defaults to TimeoutDefault.
	Timeout time.Duration
	// FlowFile is a JSON flow file (see [LoadFlowFile]) whose flows Start
	// adds, or updates when they differ from the stored ones. "" means none.
	FlowFile string
	// Clock defaults to the real clock. Timers always run in real time.
	Clock Clock
	// JitterFunc returns a number in [0, 1) that picks the backoff jitter.
	// Defaults to math/rand/v2's Float64.
	JitterFunc func() float64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when set, gets the scheduler's Prometheus metrics (the list
	// is in metrics.go). Nil: no metrics.
	Metrics prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DrainTimeoutDefault
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = ReconcileIntervalDefault
	}
	if c.MisfireThreshold == 0 {
		c.MisfireThreshold = MisfireThresholdDefault
	}
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.Clock == nil {
		c.Clock = ClockFunc(time.Now)
	}
	if c.JitterFunc == nil {
		c.JitterFunc = rand.Float64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	if _, err := protocol.NewNames(c.Prefix); err != nil {
		return fmt.Errorf("scheduler: Config.Prefix: %w", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"LeaderTTL", c.LeaderTTL}, {"RenewInterval", c.RenewInterval},
		{"ReconcileInterval", c.ReconcileInterval}, {"MisfireThreshold", c.MisfireThreshold},
		{"Timeout", c.Timeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("scheduler: Config.%s must not be negative, got %s", d.name, d.v)
		}
	}
	if c.DrainTimeout < -1 {
		return fmt.Errorf("scheduler: Config.DrainTimeout must be positive or -1, got %s", c.DrainTimeout)
	}
	return nil
}

// Scheduler fires the stored flows while it is the elected leader among all
// Scheduler instances sharing the prefix; the others stand by. Every process
// may run one (typically each coordinator). It is safe for concurrent use
// and does not close the JetStream connection it is given.
type Scheduler struct {
	js     jetstream.JetStream
	cfg    Config
	names  protocol.Names
	client *Client
	log    *slog.Logger
	drain  chan struct{} // closed by Stop: stop firing, finish running flows

	metrics *metrics // nil without Config.Metrics (metrics.go)

	life startstop.Life

	mu       sync.Mutex // guards the fields below
	elector  *leader.Elector
	stopped  bool          // Stop began: a term elected now does not lead
	leadDone chan struct{} // closed when the current lead loop returns; nil if none
	epoch    uint64        // current term's epoch while leading
}

// New returns a scheduler. It does no I/O; call Start.
func New(js jetstream.JetStream, cfg Config) (*Scheduler, error) {
	if js == nil {
		return nil, errors.New("scheduler: no JetStream context (nil): pass one from jetstream.New(nc)")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	client, err := NewClient(js, ClientConfig{Prefix: cfg.Prefix, Timeout: cfg.Timeout})
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		js:     js,
		cfg:    cfg,
		names:  protocol.MustNames(cfg.Prefix),
		client: client,
		log:    cfg.Logger.With("component", "scheduler"),
		drain:  make(chan struct{}),
	}
	el, err := leader.New(js, leader.Config{
		Bucket:        layout.LeaderBucket(s.names),
		ID:            cfg.ID,
		TTL:           cfg.LeaderTTL,
		RenewInterval: cfg.RenewInterval,
		OnElected:     s.onElected,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	s.elector = el
	if cfg.Metrics != nil {
		if s.metrics, err = newMetrics(s, cfg.Metrics); err != nil {
			return nil, fmt.Errorf("scheduler: metrics: %w", err)
		}
	}
	return s, nil
}

// Client returns the flow management API bound to this scheduler's
// connection and prefix. It only needs the connection, so it keeps working
// after Stop.
func (s *Scheduler) Client() *Client { return s.client }

// ID returns this instance's identity in the leader election.
func (s *Scheduler) ID() string { return s.elector.ID() }

// Leading reports whether this instance is the leader now, and its fencing
// epoch (carried on every trigger it publishes as Trigger.Epoch).
func (s *Scheduler) Leading() (epoch uint64, ok bool) {
	t, ok := s.elector.Leading()
	return t.Epoch, ok
}

// Start seeds the flows of Config.FlowFile, then joins the leader election
// and returns; the leader fires flows in the background. ctx bounds only
// the setup. A Start that fails has started nothing; a second Start returns
// [ErrAlreadyStarted].
func (s *Scheduler) Start(ctx context.Context) (err error) {
	if err := s.life.Start("scheduler"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			startstop.Undo(ctx, s.Stop)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.FlowFile != "" {
		flows, err := LoadFlowFile(s.cfg.FlowFile)
		if err != nil {
			return err
		}
		if err := s.client.seed(ctx, flows); err != nil {
			return err
		}
	}
	if err := s.elector.Start(ctx); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// Stop shuts down gracefully: the leader stops firing, waits for running
// flows to finish (at most Config.DrainTimeout, and until ctx is done), then
// releases leadership so another instance takes over at once. It returns an
// error wrapping [ErrDrainTimeout] if flows were still running (they go on;
// the next leader tracks them). Calling Stop twice, or before Start, is
// safe.
func (s *Scheduler) Stop(ctx context.Context) error {
	first, started := s.life.Stop()
	if !first || !started {
		return nil
	}
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	close(s.drain)
	var drainErr error
	s.mu.Lock()
	done := s.leadDone
	s.mu.Unlock()
	if done != nil && s.cfg.DrainTimeout > 0 {
		t := time.NewTimer(s.cfg.DrainTimeout)
		select {
		case <-done:
		case <-t.C:
			drainErr = ErrDrainTimeout
		case <-ctx.Done():
			drainErr = fmt.Errorf("%w: %w", ErrDrainTimeout, ctx.Err())
		}
		t.Stop()
	}
	if err := s.elector.Stop(ctx); err != nil {
		return errors.Join(drainErr, fmt.Errorf("scheduler: %w", err))
	}
	return drainErr
}

// onElected runs for one leadership term.
func (s *Scheduler) onElected(ctx context.Context, t leader.Term) {
	done := make(chan struct{})
	defer close(done)
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.leadDone = done
	s.epoch = t.Epoch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.leadDone = nil
		s.mu.Unlock()
	}()
	l := &leaderRun{s: s, epoch: t.Epoch, log: s.log.With("epoch", t.Epoch)}
	if err := l.run(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("leader loop ended", "err", err)
	}
	s.metrics.setPaused(0) // only a leader counts them
}
