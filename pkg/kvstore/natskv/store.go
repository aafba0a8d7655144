package natskv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/kvcore"
	"github.com/cano-nats/cano/internal/kvwatch"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Defaults and limits for [Config].
const (
	// TimeoutDefault bounds a call whose ctx has no deadline.
	TimeoutDefault = 5 * time.Second
	// DeleteMarkerTTLDefault is how long the marker a Delete leaves in the
	// bucket is kept, when the bucket supports per-message TTLs.
	DeleteMarkerTTLDefault = time.Hour
	// DeleteMarkerTTLMin is the shortest DeleteMarkerTTL the server accepts.
	DeleteMarkerTTLMin = time.Second
	// HeaderRoom is kept free under the server's max payload and the
	// bucket's max value size for the headers a compare-and-set write sends.
	HeaderRoom = 128
)

// Config configures a [Store]. The zero value uses the defaults.
type Config struct {
	// Prefix selects the deployment: the bucket is
	// the <prefix>_store bucket of this prefix (created by
	// provision.Ensure). Defaults to protocol.PrefixDefault.
	Prefix string
	// Bucket overrides the bucket name. Defaults to the store bucket of
	// Prefix.
	Bucket string
	// Timeout bounds each call whose ctx has no deadline; a deadline the
	// caller set is never changed. Watch is not bounded. Defaults to
	// TimeoutDefault.
	Timeout time.Duration
	// MaxValueSize is the largest value written, in bytes. Defaults to the
	// smaller of the bucket's max value size and the connection's max
	// payload, less HeaderRoom; a larger setting is refused by New.
	MaxValueSize int
	// DeleteMarkerTTL is how long the marker left by Delete stays in the
	// bucket, so deleted keys do not accumulate markers forever. It applies
	// only when the bucket has LimitMarkerTTL set (provision sets it);
	// otherwise markers are kept. Defaults to DeleteMarkerTTLDefault; -1
	// keeps markers forever; otherwise at least DeleteMarkerTTLMin.
	DeleteMarkerTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = protocol.PrefixDefault
	}
	if c.Timeout == 0 {
		c.Timeout = TimeoutDefault
	}
	if c.DeleteMarkerTTL == 0 {
		c.DeleteMarkerTTL = DeleteMarkerTTLDefault
	}
	return c
}

func (c Config) validate() error {
	if _, err := protocol.NewNames(c.Prefix); err != nil {
		return fmt.Errorf("kvstore: Config.Prefix: %w", err)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("kvstore: Config.Timeout must be positive, got %s", c.Timeout)
	}
	if c.MaxValueSize < 0 {
		return fmt.Errorf("kvstore: Config.MaxValueSize must not be negative, got %d", c.MaxValueSize)
	}
	if c.DeleteMarkerTTL != -1 && c.DeleteMarkerTTL < DeleteMarkerTTLMin {
		return fmt.Errorf("kvstore: Config.DeleteMarkerTTL must be -1 or at least %s, got %s",
			DeleteMarkerTTLMin, c.DeleteMarkerTTL)
	}
	return nil
}

// Store is the [kvstore.Store] on a JetStream KV bucket, shared by every process
// connected to the same NATS deployment. It is the default store.
//
// Values larger than the maximum value size are refused with
// [kvstore.ErrValueTooLarge]; they are never chunked. Append is a compare-and-set
// loop on the key's revision; concurrent Appends to one key from goroutines
// of the same process are batched into one write, so contention is between
// processes only. Delete purges the key's history and leaves a marker that
// expires after Config.DeleteMarkerTTL.
//
// A Store is safe for concurrent use. It does not own the JetStream context it
// was built from and never closes it.
type Store struct {
	js           jetstream.JetStream
	kv           jetstream.KeyValue
	stream       jetstream.Stream // the bucket's stream, for its subject index (Keys)
	subjects     string           // the bucket's subject prefix, "$KV.<bucket>."
	timeout      time.Duration
	maxValueSize int
	markerTTL    time.Duration // 0: markers are kept

	mu sync.Mutex
	// guarded by mu
	appends map[string]*appendQueue // per key, present while a batch runs
}

var (
	_ kvstore.Store              = (*Store)(nil)
	_ kvstore.ResourceWithHealth = (*Store)(nil)
)

// New opens the store bucket (see [Config]) through js. The bucket must
// exist: provision.Ensure creates it. New reads the bucket's settings, so
// it does I/O, bounded by ctx (or Config.Timeout). It does not close js.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Bucket == "" {
		cfg.Bucket = layout.StoreBucket(protocol.MustNames(cfg.Prefix))
	}
	s := &Store{timeout: cfg.Timeout}
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("kvstore: open bucket %s (created by provision.Ensure): %w", cfg.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("kvstore: bucket %s status: %w", cfg.Bucket, err)
	}
	limit := int(js.Conn().MaxPayload())
	if m := int(st.Config().MaxValueSize); m > 0 && m < limit {
		limit = m
	}
	limit -= HeaderRoom
	switch {
	case cfg.MaxValueSize == 0:
		cfg.MaxValueSize = limit
	case cfg.MaxValueSize > limit:
		return nil, fmt.Errorf("kvstore: Config.MaxValueSize %d exceeds what bucket %s and the server accept (%d)",
			cfg.MaxValueSize, cfg.Bucket, limit)
	}
	stream, err := js.Stream(ctx, layout.KVStream(cfg.Bucket))
	if err != nil {
		return nil, fmt.Errorf("kvstore: bucket %s stream: %w", cfg.Bucket, err)
	}
	s.js, s.kv, s.stream, s.subjects = js, kv, stream, protocol.KVSubject(cfg.Bucket, "")
	s.maxValueSize = cfg.MaxValueSize
	if st.LimitMarkerTTL() > 0 && cfg.DeleteMarkerTTL > 0 {
		s.markerTTL = cfg.DeleteMarkerTTL
	}
	return s, nil
}

// MaxValueSize returns the largest value the store writes, in bytes.
func (s *Store) MaxValueSize() int { return s.maxValueSize }

// Get implements [kvstore.Store.Get].
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := kvstore.ValidateKey(key); err != nil {
		return nil, err
	}
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, mapErr("get", key, err)
	}
	v := e.Value()
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Put implements [kvstore.Store.Put].
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	if err := kvstore.ValidateKey(key); err != nil {
		return err
	}
	if len(value) > s.maxValueSize {
		return kvcore.TooLarge(key, len(value), s.maxValueSize)
	}
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	if _, err := s.kv.Put(ctx, key, value); err != nil {
		return mapErr("put", key, err)
	}
	return nil
}

// Delete implements [kvstore.Store.Delete]. It purges the key's history; the
// marker it leaves expires after Config.DeleteMarkerTTL.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := kvstore.ValidateKey(key); err != nil {
		return err
	}
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	var opts []jetstream.KVDeleteOpt
	if s.markerTTL > 0 {
		opts = append(opts, jetstream.PurgeTTL(s.markerTTL))
	}
	if err := s.kv.Purge(ctx, key, opts...); err != nil {
		return mapErr("delete", key, err)
	}
	return nil
}

// Keys implements [kvstore.Store.Keys].
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	if err := kvcore.ValidatePrefix(prefix, true); err != nil {
		return nil, err
	}
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	// Not ListKeysFiltered: it ends at nats.go's end-of-initial-values
	// marker, which never comes when a key's last message (a delete marker
	// whose TTL runs out, say) is removed before the listing reads it
	// (see kvwatch).
	keys := []string{}
	listed := map[string]bool{}
	err := kvwatch.Current(ctx, s.js, s.kv, subjectFilter(prefix), func(e jetstream.KeyValueEntry) error {
		if k := e.Key(); strings.HasPrefix(k, prefix) && !listed[k] {
			listed[k] = true
			keys = append(keys, k)
		}
		return nil
	}, jetstream.MetaOnly())
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("kvstore: keys %q: %w", prefix, ctxErr)
		}
		return nil, mapErr("keys", prefix, err)
	}
	// The listing reads each key's latest message through a consumer, which
	// skips a key rewritten while it runs (its message is replaced under the
	// consumer), so a key written all along can be missing. The stream's
	// subject index names every key that holds a message; one the listing
	// missed is read, which tells a live key from a delete marker.
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.subjects+subjectFilter(prefix)))
	if err != nil {
		return nil, mapErr("keys", prefix, err)
	}
	for subj := range info.State.Subjects {
		k := strings.TrimPrefix(subj, s.subjects)
		if listed[k] || !strings.HasPrefix(k, prefix) {
			continue
		}
		if _, err := s.kv.Get(ctx, k); err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
				continue
			}
			return nil, mapErr("keys", prefix, err)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// Watch implements [kvstore.Store.Watch].
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan kvstore.Change, error) {
	if err := kvcore.ValidatePrefix(prefix, true); err != nil {
		return nil, err
	}
	// The watcher lives as long as ctx: nats.go stops it when the context
	// given here ends, so no setup timeout may be derived from it.
	w, err := s.kv.Watch(ctx, subjectFilter(prefix), jetstream.UpdatesOnly())
	if err != nil {
		return nil, mapErr("watch", prefix, err)
	}
	out := make(chan kvstore.Change)
	go func() {
		defer close(out)
		defer func() {
			_ = w.Stop()
			// The watcher blocks on a full channel; drain it until Stop
			// closes it.
			go func() {
				for range w.Updates() {
				}
			}()
		}()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
			if e == nil || !strings.HasPrefix(e.Key(), prefix) {
				continue
			}
			c := kvstore.Change{Key: e.Key(), Op: kvstore.OpPut, Value: e.Value()}
			if e.Operation() != jetstream.KeyValuePut {
				c.Op, c.Value = kvstore.OpDelete, nil
			} else if c.Value == nil {
				c.Value = []byte{}
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// subjectFilter returns the KV watch filter covering every key that starts
// with prefix: the prefix's complete tokens followed by ">". Keys are then
// matched against the full prefix.
func subjectFilter(prefix string) string {
	i := strings.LastIndexByte(prefix, '.')
	if i < 0 {
		return jetstream.AllKeys
	}
	return prefix[:i+1] + jetstream.AllKeys
}

// Setup checks that the bucket is reachable.
func (s *Store) Setup(ctx context.Context) error {
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	if _, err := s.kv.Status(ctx); err != nil {
		return fmt.Errorf("kvstore: bucket %s: %w", s.kv.Bucket(), err)
	}
	return nil
}

// Teardown does nothing: the store does not own its connection.
func (s *Store) Teardown(context.Context) error { return nil }

// Health reports the bucket unhealthy when its status cannot be read.
func (s *Store) Health(ctx context.Context) kvstore.HealthStatus {
	ctx, cancel := deadline.Default(ctx, s.timeout)
	defer cancel()
	if _, err := s.kv.Status(ctx); err != nil {
		return kvstore.Unhealthy(fmt.Sprintf("bucket %s: %v", s.kv.Bucket(), err))
	}
	return kvstore.Healthy()
}

// Append implements [kvstore.Store.Append]. Concurrent Appends to one key from this
// process are written together in one compare-and-set; the loop re-reads
// and retries on a conflict with another process until the latest deadline
// of the waiting callers (or Config.Timeout) passes, then fails with
// [kvstore.ErrConflict].
func (s *Store) Append(ctx context.Context, key string, item []byte) error {
	if err := kvstore.ValidateKey(key); err != nil {
		return err
	}
	if len(item)+1 > s.maxValueSize {
		return fmt.Errorf("kvstore: append %q: %w: the item alone is %d bytes, the maximum value size is %d (values are refused, not chunked)",
			key, kvstore.ErrValueTooLarge, len(item), s.maxValueSize)
	}
	if err := kvcore.ValidateItem(item); err != nil {
		return fmt.Errorf("kvstore: append %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kvstore: append %q: %w", key, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(s.timeout)
	}
	req := &appendReq{item: item, deadline: deadline, done: make(chan error, 1)}
	s.mu.Lock()
	q, running := s.appends[key]
	if !running {
		q = &appendQueue{}
		if s.appends == nil {
			s.appends = make(map[string]*appendQueue)
		}
		s.appends[key] = q
	}
	q.pending = append(q.pending, req)
	s.mu.Unlock()
	if !running {
		go s.runAppends(context.WithoutCancel(ctx), key, q)
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		i := slices.Index(q.pending, req)
		if i >= 0 {
			q.pending = slices.Delete(q.pending, i, i+1)
		}
		s.mu.Unlock()
		if i >= 0 {
			return fmt.Errorf("kvstore: append %q: %w", key, ctx.Err())
		}
		return fmt.Errorf("kvstore: append %q: %w (the item may have been appended)", key, ctx.Err())
	}
}

type appendReq struct {
	item     []byte
	deadline time.Time
	done     chan error // capacity 1
}

type appendQueue struct {
	pending []*appendReq // guarded by KV.mu
}

// runAppends writes the queued items of key, batch after batch, until the
// queue is empty.
func (s *Store) runAppends(ctx context.Context, key string, q *appendQueue) {
	var last lastWrite
	for {
		s.mu.Lock()
		batch := q.pending
		q.pending = nil
		if len(batch) == 0 {
			delete(s.appends, key)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		batch, errs := s.commitAppends(ctx, key, q, batch, &last)
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}

// lastWrite is what this process last wrote to a key, so the next batch can
// try its compare-and-set without reading the key first.
type lastWrite struct {
	value []byte
	rev   uint64 // 0: unknown
}

// commitAppends appends the batch's items with a compare-and-set loop. On a
// conflict it also takes the items queued meanwhile. It returns the final
// batch and one error per request.
func (s *Store) commitAppends(ctx context.Context, key string, q *appendQueue, batch []*appendReq, last *lastWrite) ([]*appendReq, []error) {
	deadline := batch[0].deadline
	for _, r := range batch[1:] {
		if r.deadline.After(deadline) {
			deadline = r.deadline
		}
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	all := func(err error) []error {
		errs := make([]error, len(batch))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for conflicts := 0; ; conflicts++ {
		items := make([][]byte, len(batch))
		for i, r := range batch {
			items[i] = r.item
		}
		cur, rev := last.value, last.rev
		if rev == 0 {
			e, err := s.kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
			case err != nil:
				return batch, all(mapErr("append", key, err))
			default:
				cur, rev = e.Value(), e.Revision()
				if cur == nil {
					cur = []byte{}
				}
			}
		}
		*last = lastWrite{}
		out, errs, err := kvcore.AppendItems(cur, items, s.maxValueSize)
		if err != nil {
			return batch, all(fmt.Errorf("kvstore: append %q: %w", key, err))
		}
		for i, e := range errs {
			if e != nil {
				errs[i] = fmt.Errorf("kvstore: append %q: %w", key, e)
			}
		}
		if !slices.ContainsFunc(errs, func(e error) bool { return e == nil }) {
			return batch, errs
		}
		var newRev uint64
		if rev == 0 {
			newRev, err = s.kv.Create(ctx, key, out)
		} else {
			newRev, err = s.kv.Update(ctx, key, out, rev)
		}
		if err == nil {
			*last = lastWrite{value: out, rev: newRev}
			return batch, errs
		}
		if !kvcas.Conflict(err) {
			return batch, all(mapErr("append", key, err))
		}
		if ctx.Err() != nil {
			return batch, all(fmt.Errorf("kvstore: append %q: gave up after %d conflicts: %w",
				key, conflicts+1, errors.Join(kvstore.ErrConflict, ctx.Err())))
		}
		// Lost to another process: take what queued up meanwhile, so the
		// next attempt carries it too, and back off a little once the
		// conflicts repeat.
		s.mu.Lock()
		batch = append(batch, q.pending...)
		q.pending = nil
		s.mu.Unlock()
		if conflicts >= 2 {
			d := time.Duration(rand.Int64N(int64(100*time.Microsecond) << min(conflicts-2, 6)))
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
}

// mapErr translates a JetStream error into the package's sentinels.
func mapErr(op, key string, err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("kvstore: %s %q: %w", op, key, kvstore.ErrNotFound)
	case kvcas.Conflict(err):
		return fmt.Errorf("kvstore: %s %q: %w: %w", op, key, kvstore.ErrConflict, err)
	case errors.Is(err, nats.ErrMaxPayload),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum:
		return fmt.Errorf("kvstore: %s %q: %w: %w", op, key, kvstore.ErrValueTooLarge, err)
	case errors.Is(err, jetstream.ErrInvalidKey):
		return fmt.Errorf("kvstore: %s %q: %w: %w", op, key, kvstore.ErrInvalidKey, err)
	}
	return fmt.Errorf("kvstore: %s %q: %w", op, key, err)
}
