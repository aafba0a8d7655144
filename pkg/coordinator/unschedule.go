package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/layout"
)

// Timers a run no longer needs. A durable timer is a schedule message on
// the timers stream, held by the server until its time: a scheduled run's
// start, a total timeout's deadline, a split's join timeout. A step can
// make one moot before its time (a cancel before the start, a run that
// ends before its deadline, a split joined before its timeout), and a run
// with a day's total timeout would otherwise keep its deadline a day. So
// the coordinator that applied the step purges the schedule's subject
// (engine.Effects.Unschedule), after the record is written.
//
// It is best effort, off the shard's path: the purges queue for a few
// goroutines per coordinator (a JetStream API request each). A purge that
// fails, one that does not fit the queue, or one lost with its coordinator
// leaves the schedule, which fires at its time and changes nothing, as
// every stale timer does.

// unscheduleQueue bounds the purges waiting; beyond it a schedule is left
// to fire. Measured with canobench -scenarios timed (20,000 one-task runs
// with an hour's total timeout, at 12,000-15,000 runs/s on 2 cores):
// while the load lasts the server has little to spare, and eight purgers
// removed about one timer in seven (one purger one in thirty, thirty-two
// about half, at some cost to the runs); once it had passed, they removed
// the queued ones at about 25,000 a second. So the queue is what catches a
// burst up: this one holds about 2.5 MB of subjects when full. A load that
// never lets up leaves its surplus to fire.
const unscheduleQueue = 32768

// unschedulers is the number of purges in flight per coordinator.
const unschedulers = 8

// unscheduleTimeout bounds one purge.
const unscheduleTimeout = 5 * time.Second

// What became of a moot timer (cano_coordinator_timers_unscheduled_total).
const (
	unscheduleRemoved  = iota // purged
	unscheduleDropped         // the queue was full: left to fire
	unscheduleFailed          // the purge failed: left to fire
	unscheduleOutcomes        // the number of outcomes
)

// unscheduleOutcome names the outcomes, by index, for the metric's label.
var unscheduleOutcome = [unscheduleOutcomes]string{"removed", "dropped", "failed"}

// unschedule queues the purge of fx's moot timers. It never blocks.
func (c *Coordinator) unschedule(fx *engine.Effects) {
	for _, tf := range fx.Unschedule {
		subject := c.names.TimerAtSubject(tf.RunID, layout.TimerName(tf.Kind, tf.Step))
		select {
		case c.unsched <- subject:
		default:
			c.unscheduled[unscheduleDropped].Add(1)
			c.log.Debug("too many timers to remove: this one stays and fires at its time, changing nothing", "run_id", tf.RunID, "timer", string(tf.Kind))
		}
	}
}

// unscheduleLoop purges the queued timers' subjects, unschedulers at a
// time, until ctx ends, then closes done.
func (c *Coordinator) unscheduleLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	var wg sync.WaitGroup
	for range unschedulers {
		wg.Go(func() { c.purgeTimers(ctx) })
	}
	wg.Wait()
}

// purgeTimers is one of unscheduleLoop's purgers.
func (c *Coordinator) purgeTimers(ctx context.Context) {
	var stream jetstream.Stream
	for {
		var subject string
		select {
		case <-ctx.Done():
			return
		case subject = <-c.unsched:
		}
		pctx, cancel := context.WithTimeout(ctx, unscheduleTimeout)
		var err error
		if stream == nil {
			stream, err = c.js.Stream(pctx, layout.TimersStream(c.names))
		}
		if err == nil {
			err = stream.Purge(pctx, jetstream.WithPurgeSubject(subject))
		}
		cancel()
		if err == nil {
			c.unscheduled[unscheduleRemoved].Add(1)
		} else if ctx.Err() == nil {
			c.unscheduled[unscheduleFailed].Add(1)
			stream = nil // looked up again next time
			c.log.Debug("a moot timer was not removed: it fires at its time and changes nothing", "subject", subject, "err", err)
		}
	}
}
