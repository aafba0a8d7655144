package leader

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/startstop"
)

// Defaults and limits for [Config].
const (
	// TTLMin is the shortest lease TTL accepted (the server's TTL resolution).
	TTLMin = time.Second
	// RetryDelayDefault is how long a candidate waits after an unexpected
	// campaign error (broker unreachable, ...) before trying again.
	RetryDelayDefault = 250 * time.Millisecond
)

// Term is one leadership term of one candidate.
type Term struct {
	// Epoch is the KV revision that won the election. It grows with every
	// term across all candidates, so receivers can fence off a stale leader.
	Epoch uint64
	// ID is the candidate's identity.
	ID string
}

// Config configures an [Elector]. Bucket and OnElected are required; every
// other zero field gets its default.
type Config struct {
	// Bucket is the leader KV bucket (protocol.Names.LeaderBucket()). It
	// must have a TTL; provision creates it with one.
	Bucket string
	// Key is the lease key. Defaults to protocol.LeaderKey.
	Key string
	// ID identifies this candidate in the lease value. Defaults to a random
	// 16-hex-digit id. Each candidate must have its own.
	ID string
	// TTL is the lease TTL. Zero means the bucket's TTL; a value that
	// differs from the bucket's TTL is refused by Start (the bucket's TTL is
	// what expires the lease). At least TTLMin.
	TTL time.Duration
	// RenewInterval is how often the leader renews. A leader whose renewal
	// has not succeeded by TTL − RenewInterval/2 after the previous
	// successful one steps down, before its lease can expire. Defaults to
	// TTL/3; must be positive and at most TTL/3.
	RenewInterval time.Duration
	// RetryDelay is the pause after an unexpected campaign error. Defaults
	// to RetryDelayDefault.
	RetryDelay time.Duration
	// OnElected is called in its own goroutine when this candidate wins.
	// ctx is cancelled the moment leadership is lost or the elector stops;
	// the function must then return promptly, because the elector waits for
	// it before campaigning again or releasing the lease. If it returns
	// earlier, the candidate keeps the lease until Stop.
	OnElected func(ctx context.Context, t Term)
	// OnDeposed, if set, is called (in the elector's goroutine) after a term
	// ends for any reason other than Stop, once OnElected has returned.
	OnDeposed func(t Term, cause error)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Key == "" {
		c.Key = layout.LeaderKey
	}
	if c.ID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.ID = hex.EncodeToString(b[:])
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = RetryDelayDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	if c.Bucket == "" {
		return errors.New("leader: Config.Bucket is required")
	}
	if c.OnElected == nil {
		return errors.New("leader: Config.OnElected is required")
	}
	if c.TTL != 0 && c.TTL < TTLMin {
		return fmt.Errorf("leader: Config.TTL must be at least %s, got %s", TTLMin, c.TTL)
	}
	if c.RenewInterval < 0 {
		return fmt.Errorf("leader: Config.RenewInterval must be positive, got %s", c.RenewInterval)
	}
	if c.TTL != 0 && c.RenewInterval > c.TTL/3 {
		return fmt.Errorf("leader: Config.RenewInterval %s must be at most TTL/3 (%s)", c.RenewInterval, c.TTL/3)
	}
	if c.RetryDelay < 0 {
		return fmt.Errorf("leader: Config.RetryDelay must not be negative, got %s", c.RetryDelay)
	}
	return nil
}

// Elector campaigns for, holds and releases the lease. It is safe for
// concurrent use. It does not close the JetStream connection it is given.
type Elector struct {
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger

	life startstop.Life
	run  *startstop.Signal // fired by Stop: ends the campaign

	mu      sync.Mutex // serializes Start and Stop, guards the fields below
	term    Term
	leading bool
}

// New returns an elector for cfg. It does no I/O; call Start.
func New(js jetstream.JetStream, cfg Config) (*Elector, error) {
	if js == nil {
		return nil, errors.New("leader: nil JetStream")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Elector{js: js, cfg: cfg, log: cfg.Logger.With("component", "leader", "candidate", cfg.ID),
		run: startstop.NewSignal()}, nil
}

// ID returns this candidate's identity.
func (e *Elector) ID() string { return e.cfg.ID }

// Leading reports the current term and whether this candidate leads now.
func (e *Elector) Leading() (Term, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term, e.leading
}

// Start opens the bucket, checks its TTL and starts campaigning in the
// background. It returns once the watch is in place; ctx bounds only that
// setup; a Start that fails has started nothing. A second Start (also
// after Stop or a failed Start) returns startstop.ErrAlreadyStarted.
func (e *Elector) Start(ctx context.Context) (err error) {
	if err := e.life.Start("leader"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			startstop.Undo(ctx, e.Stop)
		}
	}()
	e.mu.Lock() // a Stop meanwhile waits for the setup to finish
	defer e.mu.Unlock()
	kv, err := e.js.KeyValue(ctx, e.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("leader: open bucket %s: %w", e.cfg.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("leader: bucket %s status: %w", e.cfg.Bucket, err)
	}
	ttl := st.TTL()
	switch {
	case ttl == 0:
		return fmt.Errorf("leader: bucket %s has no TTL; a lease needs one", e.cfg.Bucket)
	case e.cfg.TTL == 0:
		e.cfg.TTL = ttl
	case e.cfg.TTL != ttl:
		return fmt.Errorf("leader: Config.TTL %s differs from bucket %s TTL %s", e.cfg.TTL, e.cfg.Bucket, ttl)
	}
	if e.cfg.RenewInterval == 0 {
		e.cfg.RenewInterval = e.cfg.TTL / 3
	}
	if e.cfg.RenewInterval > e.cfg.TTL/3 {
		return fmt.Errorf("leader: Config.RenewInterval %s must be at most TTL/3 (%s)", e.cfg.RenewInterval, e.cfg.TTL/3)
	}
	runCtx := e.run.Context()
	w, err := kv.Watch(runCtx, e.cfg.Key, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("leader: watch %s: %w", e.cfg.Key, err)
	}
	e.life.Go(func() { e.campaignLoop(runCtx, kv, w) })
	return nil
}

// Stop stops campaigning. If this candidate leads, it cancels the term's
// context, waits for OnElected to return and releases the lease so another
// candidate takes over at once. It waits for all that at most until ctx is
// done, returning ctx.Err() then. Calling Stop twice, or before Start, is
// safe.
func (e *Elector) Stop(ctx context.Context) error {
	e.mu.Lock()
	first, _ := e.life.Stop()
	e.run.Fire()
	e.mu.Unlock()
	if !first {
		return nil
	}
	if err := e.life.Wait(ctx); err != nil {
		return fmt.Errorf("leader: stop: %w", err)
	}
	return nil
}

// campaignLoop is the campaign loop: campaign, lead or follow, until ctx is
// done.
func (e *Elector) campaignLoop(ctx context.Context, kv jetstream.KeyValue, w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	value := []byte(e.cfg.ID)
	ws := &watch{updates: w.Updates()}
	var lastErr string
	for ctx.Err() == nil {
		sent := time.Now()
		rev, err := e.campaign(ctx, kv, value)
		switch {
		case err == nil:
			lastErr = ""
			e.lead(ctx, kv, ws, value, rev, sent)
		case kvcas.Conflict(err):
			lastErr = ""
			e.follow(ctx, ws)
			e.clearExpired(ctx, kv)
		case ctx.Err() != nil:
			return
		default:
			if err.Error() != lastErr { // log each new failure once
				lastErr = err.Error()
				e.log.Warn("campaign failed; retrying", "err", err)
			}
			e.pause(ctx, ws, e.cfg.RetryDelay)
		}
	}
}

func (e *Elector) campaign(ctx context.Context, kv jetstream.KeyValue, value []byte) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, e.cfg.RenewInterval)
	defer cancel()
	return kv.Create(cctx, e.cfg.Key, value)
}

// watch holds the lease watcher's channel; nil once the watcher closed
// (connection closed), so a closed channel is not read in a busy loop.
type watch struct {
	updates <-chan jetstream.KeyValueEntry
}

// follow waits until the lease is deleted or expires (seen by the watcher)
// or one renewal interval passes, whichever comes first.
func (e *Elector) follow(ctx context.Context, w *watch) {
	e.pause(ctx, w, e.cfg.RenewInterval)
}

// clearExpired removes a lease that has outlived TTL plus one renewal
// interval, judged by the server's timestamp of its last renewal, with a
// compare-and-set delete on that revision (a renewal in between makes the
// delete fail). The bucket's own expiry does the same, but the server may
// run it late under load; this keeps the hand-over within TTL plus one
// renewal interval (plus this candidate's clock skew from the server).
func (e *Elector) clearExpired(ctx context.Context, kv jetstream.KeyValue) {
	cctx, cancel := context.WithTimeout(ctx, e.cfg.RenewInterval)
	defer cancel()
	ent, err := kv.Get(cctx, e.cfg.Key)
	if err != nil {
		return
	}
	if time.Since(ent.Created()) <= e.cfg.TTL+e.cfg.RenewInterval {
		return
	}
	if err := kv.Delete(cctx, e.cfg.Key, jetstream.LastRevision(ent.Revision())); err == nil {
		e.log.Info("removed an expired lease", "holder", string(ent.Value()), "revision", ent.Revision())
	}
}

func (e *Elector) pause(ctx context.Context, w *watch, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case ent, ok := <-w.updates:
			if !ok {
				w.updates = nil
				return
			}
			if ent != nil && ent.Operation() != jetstream.KeyValuePut {
				return
			}
		}
	}
}

// lead holds the lease won at revision rev until it is lost or ctx is done.
func (e *Elector) lead(ctx context.Context, kv jetstream.KeyValue, w *watch, value []byte, rev uint64, sent time.Time) {
	term := Term{Epoch: rev, ID: e.cfg.ID}
	e.mu.Lock()
	e.term, e.leading = term, true
	e.mu.Unlock()
	e.log.Info("elected", "epoch", rev)

	termCtx, cancelTerm := context.WithCancel(ctx)
	fnDone := make(chan struct{})
	go func() {
		defer close(fnDone)
		e.cfg.OnElected(termCtx, term)
	}()
	endTerm := func() {
		cancelTerm()
		<-fnDone
		e.mu.Lock()
		e.leading = false
		e.mu.Unlock()
	}

	// The lease the server holds lasts at least until sent+TTL (the server
	// stamps the message after we sent it).
	expires := sent.Add(e.cfg.TTL)
	ticker := time.NewTicker(e.cfg.RenewInterval)
	defer ticker.Stop()
	var cause error
loop:
	for {
		select {
		case <-ctx.Done():
			endTerm()
			e.release(kv, value, rev)
			return
		case <-ticker.C:
			// The renewal may take until half an interval before the
			// lease could lapse (TTL − RenewInterval/2 after the last
			// successful send), never longer.
			budget := time.Until(expires) - e.cfg.RenewInterval/2
			if budget <= 0 {
				cause = errors.New("leader: renewal overdue")
				break loop
			}
			rctx, cancel := context.WithTimeout(ctx, budget)
			sent := time.Now()
			newRev, err := kv.Update(rctx, e.cfg.Key, value, rev)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					continue // Stop: handled above
				}
				cause = fmt.Errorf("leader: renew: %w", err)
				break loop
			}
			rev, expires = newRev, sent.Add(e.cfg.TTL)
		case ent, ok := <-w.updates:
			if !ok {
				w.updates = nil
				if ctx.Err() != nil {
					// The watcher is bound to ctx: Stop closes it too, and
					// select may see that first. Stop: handled above.
					continue
				}
				cause = errors.New("leader: watcher closed")
				break loop
			}
			if ent == nil || ent.Revision() <= rev {
				continue
			}
			if ent.Operation() != jetstream.KeyValuePut || !bytes.Equal(ent.Value(), value) {
				cause = fmt.Errorf("leader: lease taken over (revision %d, op %s)", ent.Revision(), ent.Operation())
				break loop
			}
		}
	}
	e.log.Warn("stepped down", "epoch", term.Epoch, "cause", cause)
	endTerm()
	if e.cfg.OnDeposed != nil {
		e.cfg.OnDeposed(term, cause)
	}
}

// release deletes the lease if it is still ours, so a follower takes over
// without waiting for the TTL.
func (e *Elector) release(kv jetstream.KeyValue, value []byte, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RenewInterval)
	defer cancel()
	err := kv.Delete(ctx, e.cfg.Key, jetstream.LastRevision(rev))
	if kvcas.Conflict(err) {
		// A renewal cut short by Stop may still have landed, moving the
		// revision on: if the lease is still ours, release that revision.
		var ent jetstream.KeyValueEntry
		ent, err = kv.Get(ctx, e.cfg.Key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			e.log.Info("lease already gone; nothing to release")
			return
		}
		if err == nil {
			if ent.Operation() != jetstream.KeyValuePut || !bytes.Equal(ent.Value(), value) {
				e.log.Info("lease already passed on; nothing to release", "revision", ent.Revision())
				return
			}
			rev = ent.Revision()
			err = kv.Delete(ctx, e.cfg.Key, jetstream.LastRevision(rev))
		}
	}
	if err != nil {
		e.log.Warn("release failed; the lease will expire", "err", err)
		return
	}
	e.log.Info("released", "revision", rev)
}
