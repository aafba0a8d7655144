package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/breakerkv"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// BreakersConfig configures a [BreakerSet]. The zero value is valid.
type BreakersConfig struct {
	// Prefix of the event subjects. Defaults to "cano".
	Prefix string
	// Logger receives one line per transition. Defaults to slog.Default().
	Logger *slog.Logger
	// Clock is the breakers' time source; nil means the real clock.
	Clock breaker.Clock
	// Timeout bounds each store operation whose context has no deadline.
	// Defaults to breaker.TimeoutDefault; negative is an error.
	Timeout time.Duration
	// OnTransitionFunc, if not nil, is called after each transition this
	// process made, after it was logged and published (tests, metrics). It
	// must not block.
	OnTransitionFunc func(breaker.Transition)
}

// BreakerSet is the [Breakers] implementation over [breaker.Breaker]: one
// breaker per name, created on first use with the policy carried by that
// first command (defaults when it carries none; a later command naming the
// same breaker with another policy does not change it in this process).
//
// [NewSharedBreakers] keeps the states in the breakers KV bucket, shared by
// every worker process; [NewLocalBreakers] keeps them in this process.
// Transitions are logged and, when a connection is given, published as
// events (see [protocol.BreakerEventWorkflow]).
//
// While a breaker is closed, Acquire and Permit.Success do no I/O (the
// shared store reads its watched local copy). A store error (the bucket is
// unreachable) admits the call without a permit, logged at warn level: a
// breaker outage never stops work by itself.
//
// A BreakerSet is safe for concurrent use. Call [BreakerSet.Stop] when done;
// it does not close the connection or the bucket.
type BreakerSet struct {
	store    breaker.Store
	stopFunc func(context.Context) error
	nc       *nats.Conn
	names    protocol.Names
	cfg      BreakersConfig
	log      *slog.Logger

	byName sync.Map // name → *breaker.Breaker
	mu     sync.Mutex
	warned map[string]bool // guarded by mu; names whose policy mismatch was logged
}

var _ Breakers = (*BreakerSet)(nil)

// NewSharedBreakers returns breakers whose states live in kv, the breakers
// bucket (<prefix>_breakers), shared by every process using
// it. Transitions are published on nc; nc may be nil (no events). It does no
// I/O.
func NewSharedBreakers(nc *nats.Conn, kv jetstream.KeyValue, cfg BreakersConfig) (*BreakerSet, error) {
	if kv == nil {
		return nil, errors.New("worker: breakers: kv is nil")
	}
	st, err := breakerkv.NewKVStore(kv, breakerkv.KVStoreConfig{Timeout: cfg.Timeout})
	if err != nil {
		return nil, fmt.Errorf("worker: breakers: %w", err)
	}
	return newBreakerSet(nc, st, st.Stop, cfg)
}

// NewLocalBreakers returns process-local breakers (cano's behaviour: nothing
// is shared with other processes). Transitions are published on nc; nc may
// be nil (no events).
func NewLocalBreakers(nc *nats.Conn, cfg BreakersConfig) (*BreakerSet, error) {
	return newBreakerSet(nc, breaker.NewLocalStore(), nil, cfg)
}

func newBreakerSet(nc *nats.Conn, st breaker.Store, stop func(context.Context) error, cfg BreakersConfig) (*BreakerSet, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("worker: breakers: Timeout must not be negative, got %s", cfg.Timeout)
	}
	names, err := protocol.NewNames(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("worker: breakers: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &BreakerSet{store: st, stopFunc: stop, nc: nc, names: names, cfg: cfg,
		log: cfg.Logger.With("component", "breakers"), warned: map[string]bool{}}, nil
}

// Acquire implements [Breakers]. It returns a permit, or an error matching
// both fsm.ErrCircuitOpen and breaker.ErrOpen when the breaker rejects the
// call. policy configures the breaker if this is the first use of name in
// this process; nil means the breaker defaults. A store error admits the
// call: it returns (nil, nil) and logs a warning.
func (s *BreakerSet) Acquire(ctx context.Context, name string, policy *protocol.BreakerPolicy) (Permit, error) {
	b, err := s.breaker(name, policy)
	if err != nil {
		s.log.Warn("breaker unusable; call admitted", "breaker", name, "err", err)
		return nil, nil
	}
	p, err := b.Acquire(ctx)
	switch {
	case errors.Is(err, breaker.ErrOpen):
		return nil, &rejectedError{err: err}
	case err != nil:
		s.log.Warn("breaker store error; call admitted", "breaker", name, "err", err)
		return nil, nil
	}
	return &breakerPermit{p: p, log: s.log}, nil
}

// Breaker returns the named breaker if this set has created it.
func (s *BreakerSet) Breaker(name string) (*breaker.Breaker, bool) {
	b, ok := s.byName.Load(name)
	if !ok {
		return nil, false
	}
	return b.(*breaker.Breaker), true
}

// Stop stops the shared store's watchers (bounded by ctx); afterwards
// shared breakers admit every call (store errors). Safe to call twice; it
// does nothing for local breakers.
func (s *BreakerSet) Stop(ctx context.Context) error {
	if s.stopFunc == nil {
		return nil
	}
	return s.stopFunc(ctx)
}

func (s *BreakerSet) breaker(name string, policy *protocol.BreakerPolicy) (*breaker.Breaker, error) {
	if v, ok := s.byName.Load(name); ok {
		b := v.(*breaker.Breaker)
		if policy != nil {
			s.checkPolicy(b, *policy)
		}
		return b, nil
	}
	var p breaker.Policy
	if policy != nil {
		p = wirecodec.BreakerPolicyFromWire(*policy)
	}
	b, err := breaker.New(name, s.store, breaker.Settings{Policy: p, Clock: s.cfg.Clock,
		Timeout: s.cfg.Timeout, OnTransitionFunc: s.onTransition})
	if err != nil {
		return nil, err
	}
	v, _ := s.byName.LoadOrStore(name, b)
	return v.(*breaker.Breaker), nil
}

// checkPolicy logs once per name when a command carries a policy other than
// the one the breaker was created with.
func (s *BreakerSet) checkPolicy(b *breaker.Breaker, p protocol.BreakerPolicy) {
	got := wirecodec.BreakerPolicyFromWire(p)
	want := b.Policy()
	if got.FailureThreshold == 0 {
		got.FailureThreshold = breaker.FailureThresholdDefault
	}
	if got.ResetTimeout == 0 {
		got.ResetTimeout = breaker.ResetTimeoutDefault
	}
	if got.HalfOpenMaxCalls == 0 {
		got.HalfOpenMaxCalls = breaker.HalfOpenMaxCallsDefault
	}
	if got == want {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.warned[b.Name()] {
		s.warned[b.Name()] = true
		s.log.Warn("breaker named with two policies; keeping the first", "breaker", b.Name(),
			"policy", fmt.Sprintf("%+v", want), "ignored", fmt.Sprintf("%+v", got))
	}
}

func (s *BreakerSet) onTransition(t breaker.Transition) {
	attrs := []any{"breaker", t.Name, "from", t.From, "to", t.To, "epoch", t.Epoch}
	detail := fmt.Sprintf("%s -> %s (epoch %d)", t.From, t.To, t.Epoch)
	if t.To == breaker.StateOpen {
		attrs = append(attrs, "open_until", t.OpenUntil)
		detail += fmt.Sprintf(", open until %s", t.OpenUntil.UTC().Format(time.RFC3339Nano))
	}
	if t.To == breaker.StateOpen {
		s.log.Warn("breaker transition", attrs...)
	} else {
		s.log.Info("breaker transition", attrs...)
	}
	if s.nc != nil {
		ev := &protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventBreaker, RunID: t.Name,
			Workflow: protocol.BreakerEventWorkflow, State: string(t.To), Time: t.At.UnixNano(), Detail: detail}
		if err := publishEvent(s.nc, s.names.EventSubject(protocol.BreakerEventWorkflow, t.Name, protocol.EventBreaker), ev); err != nil {
			s.log.Debug("publish breaker event", "breaker", t.Name, "err", err)
		}
	}
	if f := s.cfg.OnTransitionFunc; f != nil {
		f(t)
	}
}

// rejectedError is a breaker rejection: it matches fsm.ErrCircuitOpen and
// unwraps to the breaker's *OpenError (so breaker.ErrOpen too).
type rejectedError struct{ err error }

func (e *rejectedError) Error() string   { return e.err.Error() }
func (e *rejectedError) Unwrap() error   { return e.err }
func (e *rejectedError) Is(t error) bool { return t == fsm.ErrCircuitOpen }

// breakerPermit adapts *breaker.Permit to [Permit]; Release makes sure an
// unreported permit is consumed (as a failure).
type breakerPermit struct {
	p   *breaker.Permit
	log *slog.Logger
}

func (p *breakerPermit) Success(ctx context.Context) {
	if err := p.p.Success(ctx); err != nil {
		p.log.Warn("breaker: record success", "err", err)
	}
}

func (p *breakerPermit) Failure(ctx context.Context) {
	if err := p.p.Failure(ctx); err != nil {
		p.log.Warn("breaker: record failure", "err", err)
	}
}

// Release implements permitReleaser.
func (p *breakerPermit) Release() {
	if err := p.p.Release(); err != nil {
		p.log.Warn("breaker: release permit", "err", err)
	}
}

// permitReleaser is implemented by permits that must be consumed even when
// the worker never reports an outcome (a panic between acquire and report).
type permitReleaser interface{ Release() }
