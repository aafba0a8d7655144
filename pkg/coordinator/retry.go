package coordinator

import (
	"fmt"
	"github.com/cano-nats/cano/internal/layout"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bounds of the delay before a failed input is redelivered.
const (
	// NakDelayMin is the delay after an input's first failed handling; it
	// doubles with each further delivery up to NakDelayMax.
	NakDelayMin = 250 * time.Millisecond
	// NakDelayMax caps the delay between deliveries of a failing input.
	NakDelayMax = 30 * time.Second
	// MaxDeliveriesDefault is how many times an input is handled before
	// it is given up (dead-lettered with its last error and terminated).
	// With the backoff above, 40 deliveries wait about 16.5 minutes in
	// all (plus the time each failed handling takes): a broker that is
	// down, or a stream without a leader, for several minutes does not
	// exhaust an input (and while the broker is unreachable nothing is
	// delivered, so nothing is counted).
	MaxDeliveriesDefault = 40
)

// nakDelay is the delay before the next delivery of an input whose
// delivered-th handling failed: NakDelayMin doubled for each delivery
// after the first, capped at NakDelayMax. delivered 0 (unknown) counts as 1.
func nakDelay(delivered uint64) time.Duration {
	d := NakDelayMin
	for n := uint64(1); n < delivered && d < NakDelayMax; n++ {
		d *= 2
	}
	return min(d, NakDelayMax)
}

// exhausted reports whether an input delivered this many times has had its
// last chance.
func (c *Coordinator) exhausted(delivered uint64) bool {
	return delivered >= uint64(c.cfg.MaxDeliveries)
}

// numDelivered is msg's delivery count, 0 when unknown.
func numDelivered(msg jetstream.Msg) uint64 {
	md, err := msg.Metadata()
	if err != nil {
		return 0
	}
	return md.NumDelivered
}

// source names j's input kind in dead letters and logs.
func (j *job) source() string {
	switch {
	case j.trig != nil:
		return "trigger"
	case j.res != nil:
		return "result"
	case j.cancel != nil || j.startNow:
		return "control"
	default:
		return "timer"
	}
}

// givenUp wraps the last error of an input that is dead-lettered because it
// failed MaxDeliveries times.
func givenUp(delivered uint64, err error) error {
	return fmt.Errorf("coordinator: given up after %d deliveries that all failed (see MaxDeliveries); last error: %w", delivered, err)
}

// nakOrGiveUp naks msg, whose handling failed with err, with a delay that
// grows with its delivery count, or dead-letters and terminates it once it
// has failed MaxDeliveries times. For the ack loops, where the input's
// job is gone.
func (c *Coordinator) nakOrGiveUp(msg jetstream.Msg, err error) {
	n := numDelivered(msg)
	if !c.exhausted(n) {
		_ = msg.NakWithDelay(nakDelay(n))
		return
	}
	c.rejectEarly(c.sourceOf(msg), job{msg: msg}, givenUp(n, err))
}

// sourceOf names the input kind of msg by the stream it came from.
func (c *Coordinator) sourceOf(msg jetstream.Msg) string {
	md, err := msg.Metadata()
	if err != nil {
		return "input"
	}
	switch md.Stream {
	case layout.TriggersStream(c.names):
		return "trigger"
	case layout.ResultsStream(c.names):
		return "result"
	case layout.ControlStream(c.names):
		return "control"
	case layout.TimersStream(c.names):
		return "timer"
	}
	return "input"
}
