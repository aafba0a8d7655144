package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/kvread"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// definitions mirrors the definitions bucket: compiled machines by name and
// version, and the latest version of each workflow.
//
// A definition version never changes once registered, so a cached machine
// is always right. The latest version of a workflow does change, and the
// watch that tells us is behind: it delivers a write some time after the
// write was acknowledged (a little while normally, longer under load), and
// after the connection dropped nothing until it is recreated (a restarted
// server loses its ephemeral consumer). A trigger sent after a version was
// registered must run that version, so the cache is used only once the
// watch is known to have caught up with the bucket as it stood after the
// trigger arrived: the trigger waits for a check of the newest revision of
// the bucket's latest.* keys, begun after it arrived ([freshness]), and
// uses its cached latest version if the watch has delivered that revision.
// Otherwise (a version registered a moment ago, a watch being restarted,
// a failed check) it reads latest.<name> from the bucket. Triggers waiting
// at the same time share one check: under load the cost is about one
// leader read per round trip, not one per trigger.
type definitions struct {
	kv     jetstream.KeyValue
	read   *kvread.Reader
	log    *slog.Logger
	status <-chan nats.Status // connection status changes; nil for none
	fresh  *freshness
	// warn logs a rate-limited warning (Coordinator.warn); nil logs each.
	warn func(key, msg string, args ...any)
	wg   sync.WaitGroup // the watch goroutine

	mu       sync.RWMutex
	machines map[string]*engine.Machine // guarded by mu; key name "@" version
	latest   map[string]latestVersion   // guarded by mu; by workflow name
	// delivered is the highest revision the current watch has delivered
	// (guarded by mu; 0 while a watch is being restarted). Delivery is in
	// revision order, so every latest.* write at or below it is in latest.
	delivered uint64
}

// latestVersion is a workflow's latest version as last seen, with the KV
// revision it was read at; version "" when the key was deleted.
type latestVersion struct {
	version string
	rev     uint64
}

// newDefinitions mirrors kv, opened with js. status reports the
// connection's status changes (nil: none); the watch is recreated on each
// reconnect.
func newDefinitions(js jetstream.JetStream, kv jetstream.KeyValue, status <-chan nats.Status, log *slog.Logger) *definitions {
	read := kvread.New(js, kv)
	return &definitions{kv: kv, read: read, log: log, status: status,
		fresh: &freshness{check: func(ctx context.Context) (uint64, error) {
			return read.LastRevision(ctx, layout.LatestDefinitionKey(">"))
		}},
		machines: map[string]*engine.Machine{}, latest: map[string]latestVersion{}}
}

// rewatchBackoffMax caps the wait between attempts to restart the watch.
const rewatchBackoffMax = 5 * time.Second

// start watches the bucket and returns once the initial values are loaded.
// The watch runs until runCtx ends; wait waits for it.
func (d *definitions) start(ctx, runCtx context.Context) error {
	w, err := d.kv.WatchAll(runCtx)
	if err != nil {
		return fmt.Errorf("coordinator: watch definitions: %w", err)
	}
	ready := make(chan struct{})
	d.wg.Add(1)
	go d.watch(runCtx, w, ready)
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("coordinator: loading definitions: %w", ctx.Err())
	}
}

// wait waits for the watch goroutine to end (after runCtx ended) or ctx.
func (d *definitions) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("coordinator: stop definitions watch: %w", ctx.Err())
	}
}

func (d *definitions) watch(ctx context.Context, w jetstream.KeyWatcher, ready chan struct{}) {
	defer d.wg.Done()
	defer func() {
		if w != nil {
			_ = w.Stop()
		}
	}()
	readyClosed := false
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-d.status:
			if !ok {
				d.status = nil
				continue
			}
			if st != nats.CONNECTED {
				continue
			}
			d.log.Debug("definitions watch restarted after a reconnect")
			_ = w.Stop()
			if w = d.rewatch(ctx); w == nil {
				return
			}
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return
				}
				d.log.Warn("definitions watch ended; restarting it (until it is back, triggers read the latest version from the bucket)")
				if w = d.rewatch(ctx); w == nil {
					return
				}
				continue
			}
			if e == nil {
				if !readyClosed {
					readyClosed = true
					close(ready)
				}
				continue
			}
			d.apply(e)
		}
	}
}

// rewatch starts a new watch, retrying with backoff until it starts or ctx
// ends (then it returns nil). Until the new watch has delivered what the
// bucket holds, triggers read latest versions from the bucket.
func (d *definitions) rewatch(ctx context.Context) jetstream.KeyWatcher {
	d.mu.Lock()
	d.delivered = 0
	d.mu.Unlock()
	delay := NakDelayMin
	for {
		w, err := d.kv.WatchAll(ctx)
		if err == nil {
			return w
		}
		d.warnf("watch", "cannot watch the definitions bucket; retrying", "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, rewatchBackoffMax)
	}
}

func (d *definitions) warnf(key, msg string, args ...any) {
	if d.warn != nil {
		d.warn(key, msg, args...)
		return
	}
	d.log.Warn(msg, args...)
}

// apply takes an entry from the watch.
func (d *definitions) apply(e jetstream.KeyValueEntry) {
	key, put := e.Key(), e.Operation() == jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, "latest."):
		version := ""
		if put {
			version = string(e.Value())
		}
		d.setLatest(strings.TrimPrefix(key, "latest."), version, e.Revision())
	case strings.HasPrefix(key, "def.") && put:
		if _, err := d.compile(e.Value()); err != nil {
			d.warnf(key, "ignoring invalid definition", "key", key, "err", err)
		}
	}
	d.mu.Lock()
	d.delivered = max(d.delivered, e.Revision())
	d.mu.Unlock()
}

// setLatest records name's latest version ("": deleted) read at rev,
// unless a newer revision is known. It returns the latest version known.
func (d *definitions) setLatest(name, version string, rev uint64) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.latest[name]
	if rev >= l.rev {
		l = latestVersion{version: version, rev: rev}
		d.latest[name] = l
	}
	return l.version
}

func (d *definitions) compile(value []byte) (*engine.Machine, error) {
	var def protocol.Definition
	// Definitions are values of our own bucket (bounded by its maximum
	// value size), not untrusted input: allow large static splits.
	if err := wirecodec.Decode(value, &def, maxDefinitionSize); err != nil {
		return nil, err
	}
	m, err := engine.Compile(&def)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.machines[def.Name+"@"+def.Version] = m
	d.mu.Unlock()
	return m, nil
}

const maxDefinitionSize = 64 << 20

var errUnknownWorkflow = errors.New("unknown workflow")

// machine returns the machine of name at version ("" = the latest),
// reading the bucket when the watch has not delivered it yet.
func (d *definitions) machine(ctx context.Context, name, version string) (*engine.Machine, error) {
	if version == "" {
		var err error
		if version, err = d.latestOf(ctx, name); err != nil {
			return nil, err
		}
	}
	d.mu.RLock()
	m := d.machines[name+"@"+version]
	d.mu.RUnlock()
	if m != nil {
		return m, nil
	}
	e, err := d.kv.Get(ctx, layout.DefinitionKey(name, version))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: %w %q version %q", fsm.ErrConfiguration, errUnknownWorkflow, name, version)
		}
		return nil, err
	}
	return d.compile(e.Value())
}

// latestOf returns name's latest version as the bucket holds it after the
// call began (see [definitions]).
func (d *definitions) latestOf(ctx context.Context, name string) (string, error) {
	unknown := func() error {
		return fmt.Errorf("%w: %w %q: no worker has registered it", fsm.ErrConfiguration, errUnknownWorkflow, name)
	}
	newest, err := d.fresh.wait(ctx)
	if err != nil && ctx.Err() != nil {
		return "", err
	}
	d.mu.RLock()
	l, caughtUp := d.latest[name], err == nil && d.delivered >= newest
	d.mu.RUnlock()
	if caughtUp {
		if l.version == "" {
			return "", unknown()
		}
		return l.version, nil
	}
	e, err := d.read.Get(ctx, layout.LatestDefinitionKey(name), l.rev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return "", unknown()
		}
		return "", err
	}
	return d.setLatest(name, string(e.Value()), e.Revision()), nil
}

// freshness coalesces checks of a revision that only grows (the newest
// revision of the bucket's latest.* keys): [freshness.wait] returns the
// result of a check begun after it was called, and the callers waiting at
// the same time share one check. At most one check runs at a time; callers
// that arrive while it runs wait for the next one, which starts when it
// ends.
type freshness struct {
	check func(ctx context.Context) (uint64, error)

	mu      sync.Mutex
	running bool
	next    *freshRound // guarded by mu; the round new callers join
}

type freshRound struct {
	done chan struct{}
	rev  uint64
	err  error
}

// freshCheckTimeout bounds one check.
const freshCheckTimeout = 5 * time.Second

func (f *freshness) wait(ctx context.Context) (uint64, error) {
	f.mu.Lock()
	if f.next == nil {
		f.next = &freshRound{done: make(chan struct{})}
	}
	r := f.next
	if !f.running {
		f.startLocked()
	}
	f.mu.Unlock()
	select {
	case <-r.done:
		return r.rev, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (f *freshness) startLocked() {
	r := f.next
	f.next, f.running = nil, true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), freshCheckTimeout)
		r.rev, r.err = f.check(ctx)
		cancel()
		close(r.done)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.running = false
		if f.next != nil {
			f.startLocked()
		}
	}()
}
