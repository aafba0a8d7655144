// Package breakerkv keeps pkg/breaker's states in a JetStream KV bucket
// (the breakers bucket), shared by every process that uses it, and
// lists and resets them for the client. It is the engine's: users reach
// shared breakers through pkg/worker (hosting) and pkg/client (operating).
package breakerkv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/startstop"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/protocol"
)

var _ breaker.Store = (*KVStore)(nil)

// KVStoreConfig configures a [KVStore]. The zero value is valid.
type KVStoreConfig struct {
	// Timeout bounds each operation whose context has no deadline.
	// Defaults to breaker.TimeoutDefault; negative is an error.
	Timeout time.Duration
}

// KVStore keeps breaker states in a JetStream KV bucket (the one named
// <prefix>_breakers), one key per breaker
// (the breaker's name), so every process using the same bucket shares
// them. Values are msgpack protocol.BreakerState; writes are
// compare-and-set on the KV revision and conflicts are retried on the fresh
// value, so a half-open breaker admits its probe limit cluster-wide.
//
// # Epochs
//
// A breaker's epoch is the KV revision of the write that started its
// current session (the value stores epoch 0 to mean "my own revision"; later
// writes in the same session copy it). Counter updates within a session keep
// the epoch, so concurrent failures all count.
//
// # Local copy
//
// The first use of a name starts a KV watcher on its key and, if the key
// does not exist yet, creates it (closed). From then on [KVStore.Load] reads
// the watched copy without I/O, and [KVStore.Update] writes with one round
// trip when the copy is current. The copy lags the bucket by the watcher's
// delivery latency (typically well under a millisecond on a LAN): in that
// window a process may admit calls through a breaker another process has
// just tripped, or reject a few after another process closed or reset it; a
// failure recorded elsewhere may not yet be visible to a local success, so
// the consecutive-failure count is approximate across processes. Half-open
// probe admission and every transition are exact, because they are writes
// checked against the latest revision.
//
// Each breaker name in use costs one ordered consumer (the watcher) on the
// bucket's stream.
//
// KVStore is safe for concurrent use. It does not own kv. Call
// [KVStore.Stop] to stop its watchers; after that every method returns
// [breaker.ErrClosed].
type KVStore struct {
	kv      jetstream.KeyValue
	timeout time.Duration
	closed  atomic.Bool
	wg      sync.WaitGroup
	// life bounds the watchers: nats.go unsubscribes a watcher when the
	// context passed to Watch ends, so they get the store's lifetime
	// (fired by Stop), not a caller's context.
	life *startstop.Signal

	mu      sync.RWMutex
	watches map[string]*keyWatch // guarded by mu
}

// kvEntry is one version of a key as this process knows it.
type kvEntry struct {
	snap   breaker.Snapshot
	rev    uint64
	exists bool // false: deleted or purged
}

// keyWatch is the watched local copy of one key.
type keyWatch struct {
	ready   chan struct{} // closed once the initial value arrived or err is set
	isReady atomic.Bool
	err     error // set before ready is closed
	cur     atomic.Pointer[kvEntry]
	w       jetstream.KeyWatcher // guarded by KVStore.mu
	// writing serializes this process's writes to the key (capacity 1), so
	// goroutines of one process queue instead of racing each other's CAS;
	// conflicts come only from other processes.
	writing chan struct{}
}

// advance installs e unless the copy already has that revision or a later one.
func (k *keyWatch) advance(e *kvEntry) *kvEntry {
	for {
		old := k.cur.Load()
		if old != nil && old.rev >= e.rev {
			return old
		}
		if k.cur.CompareAndSwap(old, e) {
			return e
		}
	}
}

// NewKVStore returns a store on kv, the breakers bucket. It does no I/O and
// does not close kv's connection.
func NewKVStore(kv jetstream.KeyValue, cfg KVStoreConfig) (*KVStore, error) {
	if kv == nil {
		return nil, errors.New("breaker: kv is nil")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: KVStoreConfig.Timeout %s: must not be negative", breaker.ErrInvalidSettings, cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = breaker.TimeoutDefault
	}
	return &KVStore{kv: kv, timeout: cfg.Timeout, watches: make(map[string]*keyWatch), life: startstop.NewSignal()}, nil
}

// Load implements [breaker.Store]. After the first use of a name it reads the
// watched local copy and does no I/O; the first use starts the watcher and
// may create the key.
func (s *KVStore) Load(ctx context.Context, name string) (breaker.Snapshot, error) {
	if s.closed.Load() {
		return breaker.Snapshot{}, breaker.ErrClosed
	}
	s.mu.RLock()
	kw := s.watches[name]
	s.mu.RUnlock()
	if kw != nil && kw.isReady.Load() {
		if e := kw.cur.Load(); e != nil && e.exists {
			return e.snap, nil
		}
	}
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	_, e, err := s.entry(ctx, name)
	if err != nil {
		return breaker.Snapshot{}, err
	}
	return e.snap, nil
}

// Update implements [breaker.Store]. Writes to one key from this process are
// serialized; fn first sees the local copy, and on a revision conflict (a
// write from another process) the store re-reads the key and calls fn
// again, until the write succeeds, fn declines, or ctx ends.
func (s *KVStore) Update(ctx context.Context, name string, fn breaker.UpdateFunc) (breaker.Snapshot, error) {
	if s.closed.Load() {
		return breaker.Snapshot{}, breaker.ErrClosed
	}
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	kw, cur, err := s.entry(ctx, name)
	if err != nil {
		return breaker.Snapshot{}, err
	}
	select {
	case kw.writing <- struct{}{}:
		defer func() { <-kw.writing }()
	case <-ctx.Done():
		return cur.snap, fmt.Errorf("breaker: update %s: %w", name, ctx.Err())
	}
	// The previous writer may have advanced the copy while we queued.
	if e := kw.cur.Load(); e != nil && e.exists && e.rev > cur.rev {
		cur = e
	}
	key := layout.BreakerKey(name)
	for {
		next, write, err := fn(cur.snap)
		if err != nil || !write {
			return cur.snap, err
		}
		newSession := next.Epoch != cur.snap.Epoch
		data, err := encodeSnapshot(name, next, newSession)
		if err != nil {
			return cur.snap, err
		}
		rev, err := s.kv.Update(ctx, key, data, cur.rev)
		if err == nil {
			if newSession {
				next.Epoch = rev
			}
			kw.advance(&kvEntry{snap: next, rev: rev, exists: true})
			return next, nil
		}
		if !kvcas.Conflict(err) {
			return cur.snap, fmt.Errorf("breaker: update %s: %w", name, err)
		}
		// Conflict: someone else wrote first. Re-read and try again.
		fresh, err := s.fetch(ctx, kw, name)
		if err != nil {
			return cur.snap, err
		}
		cur = fresh
	}
}

// Stop stops every watcher and waits (bounded by ctx) for their
// goroutines to return. Calling it twice, or before any use, is safe. It
// does not close the connection.
func (s *KVStore) Stop(ctx context.Context) error {
	s.closed.Store(true)
	s.life.Fire()
	s.mu.Lock()
	for _, kw := range s.watches {
		if kw.w != nil {
			_ = kw.w.Stop()
		}
	}
	s.mu.Unlock()
	if err := startstop.Wait(ctx, &s.wg); err != nil {
		return fmt.Errorf("breaker: stop: %w", err)
	}
	return nil
}

// entry returns name's watch and a current, existing entry: it starts the
// watcher on first use and (re)creates a missing key.
func (s *KVStore) entry(ctx context.Context, name string) (*keyWatch, *kvEntry, error) {
	kw, err := s.watch(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if e := kw.cur.Load(); e != nil && e.exists {
		return kw, e, nil
	}
	e, err := s.fetch(ctx, kw, name)
	return kw, e, err
}

// fetch reads name's key from the bucket, creating it (closed, new epoch)
// when it does not exist, and advances the local copy.
func (s *KVStore) fetch(ctx context.Context, kw *keyWatch, name string) (*kvEntry, error) {
	key := layout.BreakerKey(name)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("breaker: read %s: %w", name, err)
		}
		if s.closed.Load() {
			return nil, breaker.ErrClosed
		}
		e, err := s.kv.Get(ctx, key)
		switch {
		case err == nil:
			return kw.advance(entryFrom(e)), nil
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, fmt.Errorf("breaker: read %s: %w", name, err)
		}
		data, err := encodeSnapshot(name, breaker.Snapshot{State: breaker.StateClosed}, true)
		if err != nil {
			return nil, err
		}
		rev, err := s.kv.Create(ctx, key, data)
		switch {
		case err == nil:
			return kw.advance(&kvEntry{snap: breaker.Snapshot{State: breaker.StateClosed, Epoch: rev}, rev: rev, exists: true}), nil
		case kvcas.Conflict(err):
			continue // created concurrently: read it
		default:
			return nil, fmt.Errorf("breaker: create %s: %w", name, err)
		}
	}
}

// watch returns name's watch, starting it on first use and waiting until
// its initial value has arrived.
func (s *KVStore) watch(ctx context.Context, name string) (*keyWatch, error) {
	if err := protocol.ValidToken(name); err != nil {
		return nil, fmt.Errorf("breaker: name: %w", err)
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil, breaker.ErrClosed
	}
	kw := s.watches[name]
	if kw == nil {
		kw = &keyWatch{ready: make(chan struct{}), writing: make(chan struct{}, 1)}
		s.watches[name] = kw
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.start(name, kw)
		}()
	} else {
		s.mu.Unlock()
	}
	select {
	case <-kw.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("breaker: watch %s: %w", name, ctx.Err())
	}
	if kw.err != nil {
		return nil, kw.err
	}
	return kw, nil
}

// start opens the KV watcher for kw and runs its loop.
// Creating the watcher is bounded by the JetStream context's default
// timeout; the caller waits for it with its own context.
func (s *KVStore) start(name string, kw *keyWatch) {
	w, err := s.kv.Watch(s.life.Context(), layout.BreakerKey(name))
	s.mu.Lock()
	if err == nil && s.closed.Load() {
		_ = w.Stop()
		err = breaker.ErrClosed
	}
	if err != nil {
		if s.watches[name] == kw {
			delete(s.watches, name)
		}
		s.mu.Unlock()
		if !errors.Is(err, breaker.ErrClosed) {
			err = fmt.Errorf("breaker: watch %s: %w", name, err)
		}
		kw.err = err
		close(kw.ready)
		return
	}
	kw.w = w
	s.wg.Add(1)
	s.mu.Unlock()
	go s.run(name, kw, w)
}

// run applies watcher updates to the local copy until the watcher stops.
func (s *KVStore) run(name string, kw *keyWatch, w jetstream.KeyWatcher) {
	defer s.wg.Done()
	ready := false
	for e := range w.Updates() {
		if e == nil {
			if !ready {
				ready = true
				kw.isReady.Store(true)
				close(kw.ready)
			}
			continue
		}
		kw.advance(entryFrom(e))
	}
	// The watcher ended (Stop, or the connection closed): forget it so the
	// next use starts a fresh one.
	s.mu.Lock()
	if s.watches[name] == kw {
		delete(s.watches, name)
	}
	s.mu.Unlock()
	kw.isReady.Store(false)
	if !ready {
		kw.err = fmt.Errorf("breaker: watch %s: %w", name, breaker.ErrClosed)
		close(kw.ready)
	}
}

// entryFrom converts a KV entry. A delete or purge marker reads as missing;
// a value that does not decode reads as a fresh closed breaker whose epoch is
// its revision, so the next write replaces it.
func entryFrom(e jetstream.KeyValueEntry) *kvEntry {
	if e.Operation() != jetstream.KeyValuePut {
		return &kvEntry{snap: breaker.Snapshot{State: breaker.StateClosed}, rev: e.Revision()}
	}
	st, err := decodeState(e)
	if err != nil {
		return &kvEntry{snap: breaker.Snapshot{State: breaker.StateClosed, Epoch: e.Revision()}, rev: e.Revision(), exists: true}
	}
	return &kvEntry{snap: snapshotFrom(st), rev: e.Revision(), exists: true}
}

// decodeState decodes a KV value, resolving epoch 0 to the entry's revision.
func decodeState(e jetstream.KeyValueEntry) (protocol.BreakerState, error) {
	var st protocol.BreakerState
	if err := wirecodec.Decode(e.Value(), &st, 0); err != nil {
		return st, fmt.Errorf("breaker: decode %s: %w", e.Key(), err)
	}
	if st.Epoch == 0 {
		st.Epoch = e.Revision()
	}
	return st, nil
}

func encodeSnapshot(name string, s breaker.Snapshot, newSession bool) ([]byte, error) {
	st := protocol.BreakerState{
		V:                   protocol.SchemaVersion,
		Name:                name,
		Phase:               protocol.BreakerPhase(phase(s)),
		Policy:              wirecodec.BreakerPolicyToWire(s.Policy),
		ConsecutiveFailures: uint32(max(0, s.ConsecutiveFailures)),
		HalfOpenInFlight:    uint32(max(0, s.HalfOpenInFlight)),
		HalfOpenSuccesses:   uint32(max(0, s.HalfOpenSuccesses)),
		Epoch:               s.Epoch,
		UpdatedAt:           unixNano(s.UpdatedAt),
		OpenUntil:           unixNano(s.OpenUntil),
	}
	if newSession {
		st.Epoch = 0 // the revision of this write
	}
	data, err := wirecodec.Encode(&st)
	if err != nil {
		return nil, fmt.Errorf("breaker: encode %s: %w", name, err)
	}
	return data, nil
}

func snapshotFrom(st protocol.BreakerState) breaker.Snapshot {
	return breaker.Snapshot{
		State:               breaker.State(st.Phase),
		ConsecutiveFailures: int(st.ConsecutiveFailures),
		OpenUntil:           fromUnixNano(st.OpenUntil),
		HalfOpenInFlight:    int(st.HalfOpenInFlight),
		HalfOpenSuccesses:   int(st.HalfOpenSuccesses),
		Epoch:               st.Epoch,
		UpdatedAt:           fromUnixNano(st.UpdatedAt),
		Policy:              wirecodec.BreakerPolicyFromWire(st.Policy),
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// phase is s's state, "" read as closed.
func phase(s breaker.Snapshot) breaker.State {
	if s.State == "" {
		return breaker.StateClosed
	}
	return s.State
}
