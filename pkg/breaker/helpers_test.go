package breaker_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cano-nats/cano/pkg/breaker"
)

// manualClock is a Clock that moves only when told to.
type manualClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func newManualClock() *manualClock { return &manualClock{t: time.Unix(1_700_000_000, 0)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder collects transitions reported by OnTransitionFunc.
type recorder struct {
	mu sync.Mutex
	ts []breaker.Transition // guarded by mu
}

func (r *recorder) record(tr breaker.Transition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ts = append(r.ts, tr)
}

func (r *recorder) transitions() []breaker.Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]breaker.Transition(nil), r.ts...)
}

// edges returns "from>to" for each recorded transition.
func (r *recorder) edges() []string {
	var out []string
	for _, tr := range r.transitions() {
		out = append(out, string(tr.From)+">"+string(tr.To))
	}
	return out
}

var nameSeq atomic.Int64

// uniqueName returns a breaker name no other test uses.
func uniqueName() string { return fmt.Sprintf("b%d", nameSeq.Add(1)) }
