package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/protocol"
)

// faultKV wraps a real runsKV (the runs bucket on an embedded JetStream
// server) and injects faults into the calls a shard makes: an error in
// place of a call (a timeout, "not found", a revision conflict), or a
// write by another writer just before an update reaches the bucket (a real
// compare-and-set conflict). It is a test helper for the shard's error
// paths, not a broker: what it lets through goes to the real bucket.
type faultKV struct {
	runsKV
	mu     sync.Mutex
	errs   map[string][]error // per op, consumed one per call; a nil error lets the call through
	calls  map[string]int
	before map[string][]func() // per op, run (once each) before the call goes through
}

var _ runsKV = (*faultKV)(nil)

func newFaultKV(real runsKV) *faultKV {
	return &faultKV{runsKV: real, errs: map[string][]error{}, calls: map[string]int{}, before: map[string][]func(){}}
}

// fail makes the next calls of op (get, leader, create, update) fail with
// errs, in order.
func (f *faultKV) fail(op string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[op] = append(f.errs[op], errs...)
}

// interfere runs fn before the next call of op goes through.
func (f *faultKV) interfere(op string, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before[op] = append(f.before[op], fn)
}

// count is how many times op was called.
func (f *faultKV) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faultKV) take(op string) error {
	f.mu.Lock()
	f.calls[op]++
	var fn func()
	if q := f.before[op]; len(q) > 0 {
		fn, f.before[op] = q[0], q[1:]
	}
	var err error
	if q := f.errs[op]; len(q) > 0 {
		err, f.errs[op] = q[0], q[1:]
	}
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
	return err
}

func (f *faultKV) get(ctx context.Context, key string, minRev uint64) (jetstream.KeyValueEntry, error) {
	if err := f.take("get"); err != nil {
		return nil, err
	}
	return f.runsKV.get(ctx, key, minRev)
}

func (f *faultKV) leader(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if err := f.take("leader"); err != nil {
		return nil, err
	}
	return f.runsKV.leader(ctx, key)
}

func (f *faultKV) create(ctx context.Context, key string, data []byte, ttl string) (uint64, error) {
	if err := f.take("create"); err != nil {
		return 0, err
	}
	return f.runsKV.create(ctx, key, data, ttl)
}

func (f *faultKV) update(ctx context.Context, rec *protocol.RunRecord, data []byte, rev uint64) (uint64, error) {
	if err := f.take("update"); err != nil {
		return 0, err
	}
	return f.runsKV.update(ctx, rec, data, rev)
}

// inputMsg is an input as a shard sees it, recording how it was settled
// (shard code acknowledges through pendingAck; naks come straight here).
type inputMsg struct {
	jetstream.Msg
	subject string
	mu      sync.Mutex
	settled []string
}

func (m *inputMsg) Subject() string                           { return m.subject }
func (m *inputMsg) Data() []byte                              { return []byte{0xc0} }
func (m *inputMsg) Headers() nats.Header                      { return nil }
func (m *inputMsg) Metadata() (*jetstream.MsgMetadata, error) { return nil, jetstream.ErrNotJSMessage }
func (m *inputMsg) settle(how string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled = append(m.settled, how)
	return nil
}
func (m *inputMsg) Ack() error                         { return m.settle("ack") }
func (m *inputMsg) Nak() error                         { return m.settle("nak") }
func (m *inputMsg) NakWithDelay(time.Duration) error   { return m.settle("nak") }
func (m *inputMsg) Term() error                        { return m.settle("term") }
func (m *inputMsg) TermWithReason(reason string) error { return m.settle("term") }

func (m *inputMsg) how() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.settled...)
}
