package kvstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cano-nats/cano/internal/kvcore"
)

// MemoryMaxValueSize is the largest value a [Memory] store accepts: 1 MiB,
// the NATS server's default max_payload, so code tested against Memory does
// not write values a default deployment refuses.
const MemoryMaxValueSize = 1 << 20

// Memory is a [Store] held in one process's memory, for unit tests and
// single-process tools. It behaves as natskv.Store does (same key rules, same
// errors, same Append and Watch semantics) but shares nothing across
// processes and survives nothing.
//
// The zero value is an empty store ready to use. A Memory is safe for
// concurrent use.
type Memory struct {
	mu sync.RWMutex
	// guarded by mu
	data     map[string][]byte
	watchers map[*memWatcher]struct{}
}

var (
	_ Store    = (*Memory)(nil)
	_ Resource = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{} }

// Get implements [Store.Get].
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	v, ok := m.data[key]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return bytes.Clone(v), nil
}

// Put implements [Store.Put].
func (m *Memory) Put(ctx context.Context, key string, value []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if len(value) > MemoryMaxValueSize {
		return kvcore.TooLarge(key, len(value), MemoryMaxValueSize)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set(key, v)
	return nil
}

// set stores v and notifies watchers. Callers hold m.mu.
func (m *Memory) set(key string, v []byte) {
	if m.data == nil {
		m.data = make(map[string][]byte)
	}
	m.data[key] = v
	m.notify(Change{Key: key, Op: OpPut, Value: v})
}

// Append implements [Store.Append].
func (m *Memory) Append(ctx context.Context, key string, item []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if len(item)+1 > MemoryMaxValueSize {
		return fmt.Errorf("kvstore: append %q: %w: the item alone is %d bytes, the maximum value size is %d (values are refused, not chunked)",
			key, ErrValueTooLarge, len(item), MemoryMaxValueSize)
	}
	if err := kvcore.ValidateItem(item); err != nil {
		return fmt.Errorf("kvstore: append %q: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out, errs, err := kvcore.AppendItems(m.data[key], [][]byte{item}, MemoryMaxValueSize)
	if err != nil {
		return fmt.Errorf("kvstore: append %q: %w", key, err)
	}
	if errs[0] != nil {
		return fmt.Errorf("kvstore: append %q: %w", key, errs[0])
	}
	m.set(key, out)
	return nil
}

// Delete implements [Store.Delete].
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[key]; !ok {
		return nil
	}
	delete(m.data, key)
	m.notify(Change{Key: key, Op: OpDelete})
	return nil
}

// Keys implements [Store.Keys].
func (m *Memory) Keys(ctx context.Context, prefix string) ([]string, error) {
	if err := kvcore.ValidatePrefix(prefix, true); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	keys := []string{}
	for k := range m.data {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	slices.Sort(keys)
	return keys, nil
}

// Watch implements [Store.Watch]. A slow reader does not block writers:
// changes queue up per watcher.
func (m *Memory) Watch(ctx context.Context, prefix string) (<-chan Change, error) {
	if err := kvcore.ValidatePrefix(prefix, true); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &memWatcher{prefix: prefix, wake: make(chan struct{}, 1)}
	m.mu.Lock()
	if m.watchers == nil {
		m.watchers = make(map[*memWatcher]struct{})
	}
	m.watchers[w] = struct{}{}
	m.mu.Unlock()

	out := make(chan Change)
	go func() {
		defer close(out)
		defer func() {
			m.mu.Lock()
			delete(m.watchers, w)
			m.mu.Unlock()
		}()
		for {
			w.mu.Lock()
			q := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, c := range q {
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-w.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// notify queues c for every watcher whose prefix matches. Callers hold m.mu.
func (m *Memory) notify(c Change) {
	for w := range m.watchers {
		if !strings.HasPrefix(c.Key, w.prefix) {
			continue
		}
		w.mu.Lock()
		w.queue = append(w.queue, Change{Key: c.Key, Op: c.Op, Value: bytes.Clone(c.Value)})
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

type memWatcher struct {
	prefix string
	wake   chan struct{} // capacity 1: "the queue may be non-empty"

	mu    sync.Mutex
	queue []Change // guarded by mu
}

// Setup does nothing; it lets a Memory be registered in [Resources].
func (m *Memory) Setup(context.Context) error { return nil }

// Teardown does nothing; the data stays until the Memory is dropped.
func (m *Memory) Teardown(context.Context) error { return nil }
