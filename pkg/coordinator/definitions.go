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
// watch that tells us may be behind or dead after the connection dropped
// (a restarted server loses the watch's ephemeral consumer; the old one
// delivers nothing until it is recreated). So every cached latest version
// carries the generation it was verified in: the connection's reconnect
// count (read when it is used, so no status event has to be handled first)
// and a count of watch restarts. A trigger for a workflow whose latest
// version is of an older generation reads latest.<name> from the bucket.
// The watch is restarted on reconnect (and when it ends); once its initial
// values are in, everything it delivered is verified again.
type definitions struct {
	kv         jetstream.KeyValue
	log        *slog.Logger
	status     <-chan nats.Status // connection status changes; nil for none
	reconnects func() uint64      // the connection's reconnect count
	// warn logs a rate-limited warning (Coordinator.warn); nil logs each.
	warn func(key, msg string, args ...any)
	wg   sync.WaitGroup // the watch goroutine

	mu       sync.RWMutex
	machines map[string]*engine.Machine // guarded by mu; key name "@" version
	latest   map[string]latestVersion   // guarded by mu; by workflow name
	restarts uint64                     // guarded by mu; watch restarts, from 1
}

// generation says when a latest version was verified: after how many
// reconnects of the connection and restarts of the watch.
type generation struct {
	reconnects, restarts uint64
}

// latestVersion is a workflow's latest version as last seen, with the KV
// revision it was read at and the generation in which it was verified (the
// zero generation: never).
type latestVersion struct {
	version string
	rev     uint64
	gen     generation
}

// newDefinitions mirrors kv. status reports the connection's status changes
// and reconnects counts its reconnects (nil: never).
func newDefinitions(kv jetstream.KeyValue, status <-chan nats.Status, reconnects func() uint64, log *slog.Logger) *definitions {
	if reconnects == nil {
		reconnects = func() uint64 { return 0 }
	}
	return &definitions{kv: kv, log: log, status: status, reconnects: reconnects, machines: map[string]*engine.Machine{},
		latest: map[string]latestVersion{}, restarts: 1}
}

// rewatchBackoffMax caps the wait between attempts to restart the watch.
const rewatchBackoffMax = 5 * time.Second

// start watches the bucket and returns once the initial values are loaded.
// The watch runs until runCtx ends; wait waits for it.
func (d *definitions) start(ctx, runCtx context.Context) error {
	gen := d.current() // the generation the watch's initial values verify
	w, err := d.kv.WatchAll(runCtx)
	if err != nil {
		return fmt.Errorf("coordinator: watch definitions: %w", err)
	}
	ready := make(chan struct{})
	d.wg.Add(1)
	go d.watch(runCtx, w, gen, ready)
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

func (d *definitions) watch(ctx context.Context, w jetstream.KeyWatcher, gen generation, ready chan struct{}) {
	defer d.wg.Done()
	defer func() {
		if w != nil {
			_ = w.Stop()
		}
	}()
	synced, readyClosed := false, false
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
			d.restarted()
			_ = w.Stop()
			if w, gen = d.rewatch(ctx); w == nil {
				return
			}
			synced = false
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return
				}
				d.restarted()
				d.log.Warn("definitions watch ended; restarting it (until it is back, triggers read the latest version from the bucket)")
				if w, gen = d.rewatch(ctx); w == nil {
					return
				}
				synced = false
				continue
			}
			if e == nil {
				if !synced {
					synced = true
					d.verifyAll(gen)
				}
				if !readyClosed {
					readyClosed = true
					close(ready)
				}
				continue
			}
			if e.Operation() == jetstream.KeyValuePut {
				d.apply(e.Key(), e.Value(), e.Revision(), synced, gen)
			} else {
				d.forget(e.Key(), e.Revision())
			}
		}
	}
}

// rewatch starts a new watch, retrying with backoff until it starts or ctx
// ends (then it returns nil). It returns the generation the new watch's
// initial values verify.
func (d *definitions) rewatch(ctx context.Context) (jetstream.KeyWatcher, generation) {
	delay := NakDelayMin
	for {
		gen := d.current()
		w, err := d.kv.WatchAll(ctx)
		if err == nil {
			return w, gen
		}
		d.warnf("watch", "cannot watch the definitions bucket; retrying", "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, generation{}
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

// current is the current generation.
func (d *definitions) current() generation {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.currentLocked()
}

func (d *definitions) currentLocked() generation {
	return generation{reconnects: d.reconnects(), restarts: d.restarts}
}

// restarted makes every cached latest version unverified (the watch is
// being restarted).
func (d *definitions) restarted() {
	d.mu.Lock()
	d.restarts++
	d.mu.Unlock()
}

// verifyAll marks every latest version verified in gen, once a watch
// started in gen has delivered its initial values (every key's current
// value), unless a newer generation began meanwhile.
func (d *definitions) verifyAll(gen generation) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.currentLocked() != gen {
		return
	}
	for name, l := range d.latest {
		l.gen = gen
		d.latest[name] = l
	}
}

// apply takes a value from the watch. A latest version delivered by a watch
// that has caught up (synced) in the current generation is verified; one
// delivered before is taken (when newer) but still counts as unverified.
func (d *definitions) apply(key string, value []byte, rev uint64, synced bool, gen generation) {
	switch {
	case strings.HasPrefix(key, "latest."):
		d.setLatest(strings.TrimPrefix(key, "latest."), string(value), rev, synced, gen)
	case strings.HasPrefix(key, "def."):
		if _, err := d.compile(value); err != nil {
			d.warnf(key, "ignoring invalid definition", "key", key, "err", err)
		}
	}
}

// forget takes a delete or purge from the watch: a deleted version's
// machine is dropped, so that every coordinator treats its runs alike
// (they wait for it to be registered again: shard.machineOf), and a deleted
// latest pointer is forgotten unless a newer revision is known.
func (d *definitions) forget(key string, rev uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case strings.HasPrefix(key, "latest."):
		name := strings.TrimPrefix(key, "latest.")
		if l := d.latest[name]; rev >= l.rev {
			l.version, l.rev = "", rev // "" reads the bucket (machine)
			d.latest[name] = l
		}
	case strings.HasPrefix(key, "def."):
		name, version, ok := strings.Cut(strings.TrimPrefix(key, "def."), ".") // names hold no dot
		if ok {
			delete(d.machines, name+"@"+version)
		}
	}
}

// setLatest records name's latest version read at rev, unless a newer
// revision is known, and marks it verified in gen when verified is set and
// gen is still current. It returns the latest version known.
func (d *definitions) setLatest(name, version string, rev uint64, verified bool, gen generation) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.latest[name]
	if rev >= l.rev {
		l.version, l.rev = version, rev
	}
	if verified && gen == d.currentLocked() {
		l.gen = gen
	}
	d.latest[name] = l
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

// machine returns the machine of name at version ("" = latest), reading the
// bucket when the watch has not delivered it yet.
func (d *definitions) machine(ctx context.Context, name, version string) (*engine.Machine, error) {
	d.mu.RLock()
	if version == "" {
		if l := d.latest[name]; l.gen == d.currentLocked() {
			version = l.version
		}
	}
	m := d.machines[name+"@"+version]
	d.mu.RUnlock()
	if m != nil {
		return m, nil
	}
	if version == "" {
		// Unknown, or not verified since the connection dropped.
		gen := d.current() // before the read: a reconnect during it leaves it unverified
		e, err := d.kv.Get(ctx, layout.LatestDefinitionKey(name))
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil, fmt.Errorf("%w: %w %q: no worker has registered it", fsm.ErrConfiguration, errUnknownWorkflow, name)
			}
			return nil, err
		}
		version = d.setLatest(name, string(e.Value()), e.Revision(), true, gen)
		d.mu.RLock()
		m = d.machines[name+"@"+version]
		d.mu.RUnlock()
		if m != nil {
			return m, nil
		}
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
