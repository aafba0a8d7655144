package coordinator

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// The backstop for stalled runs.
//
// Each shard caches the records of the runs still going that it wrote or
// read. Every StallCheckInterval the shard looks through that cache (in
// memory; nothing on the hot path) for runs whose record has not moved
// (UpdatedAt, or the backstop's own last re-drive) for longer than their
// step can take (stallBound). For each such run it re-reads the record;
// if the revision is unchanged the run is stalled — its commands or timers
// were lost, say by a broker killed before it stored them — and the shard
// re-publishes what the record owes, de-duplicated as on every other path,
// logs one warning and counts it in [Stats].Stalled.
//
// A re-drive is put off while the tasks stream still holds a command of the
// same task kind: a backlog (commands waiting for a free worker, or in
// flight) explains the wait, and re-publishing after the de-duplication
// window would only add to it. So under a steady load of one kind a lost
// command of that kind waits for its queue to empty (meanwhile any input
// that meets the run still re-publishes what it owes).
//
// What it does not cover: runs in no shard's cache. A coordinator that
// died took its cache with it; the inputs it had not acknowledged are
// redelivered to another replica and drive their runs on (an input that
// meets a run still going re-publishes what it owes, whatever its delivery
// count). A run whose inputs were all acknowledged and whose publishes were
// then lost, on a coordinator that has since restarted, is found by nothing
// here: that needs a scan of the runs bucket, which this backstop avoids.

const (
	// StallCheckIntervalDefault is how often each shard looks for stalled runs.
	StallCheckIntervalDefault = 30 * time.Second
	// StallAfterDefault is how long a run may stay at a step whose time has
	// no bound (a task without attempt timeout, unbounded retries, a split
	// without join timeout) before the backstop re-drives it. Generous: a
	// re-drive of a run that was only slow costs a de-duplicated publish,
	// but after the de-duplication window could start a task again.
	StallAfterDefault = 10 * time.Minute
	// maxSweepReads bounds the records one shard re-reads per check, so a
	// check never holds a shard for long (the rest wait for the next).
	maxSweepReads = 64
	// maxBoundedRetries: a retry policy with more retries than this counts
	// as unbounded (StallAfter applies).
	maxBoundedRetries = 10_000
)

// Stats are the coordinator's counters since it was created. They only
// grow; an exporter reads them with [Coordinator.Stats].
type Stats struct {
	// Stalled counts runs the backstop found stalled and re-drove.
	Stalled uint64
}

// Stats returns the coordinator's counters. Safe for concurrent use.
func (c *Coordinator) Stats() Stats {
	return Stats{Stalled: c.stalled.Load()}
}

// stepShape is what bounds the time a run may spend at its step.
type stepShape struct {
	// Tasks the step is waiting on (one, or a split's branches in flight).
	Tasks []protocol.TaskSpec
	// JoinTimeout is the split's join timeout, 0 for none.
	JoinTimeout time.Duration
	// HasDeadline says the run has a total timeout, UntilDeadline is the
	// time from the record's last move to it (≤ 0: already passed).
	HasDeadline   bool
	UntilDeadline time.Duration
}

// stallBound is how long a run of shape sh may go without its record moving
// before it counts as stalled: the longest of its tasks' attempt sequences
// (attempts × attempt timeout + the longest backoffs between them), or the
// join timeout, or the time to the run's deadline, whichever is first,
// plus ackWait (a worker that dies mid-attempt hands its command back after
// its ack wait). With none of those bounded it is stallAfter.
func stallBound(sh stepShape, ackWait, stallAfter time.Duration) time.Duration {
	bound, ok := time.Duration(0), len(sh.Tasks) > 0
	for i := range sh.Tasks {
		d, tok := taskBound(&sh.Tasks[i])
		if !tok {
			ok = false
			break
		}
		bound = max(bound, d)
	}
	if sh.JoinTimeout > 0 && (!ok || sh.JoinTimeout < bound) {
		bound, ok = sh.JoinTimeout, true
	}
	if sh.HasDeadline {
		d := max(sh.UntilDeadline, 0)
		if !ok || d < bound {
			bound, ok = d, true
		}
	}
	if !ok {
		return stallAfter
	}
	return satAdd(bound, ackWait)
}

// taskBound is the longest a task's attempts can take: attempts × timeout
// plus the longest backoff before each retry. ok is false when it has no
// bound (no attempt timeout, or too many retries to count).
func taskBound(t *protocol.TaskSpec) (d time.Duration, ok bool) {
	if t.AttemptTimeout <= 0 {
		return 0, false
	}
	n := engine.MaxAttempts(t.Retry)
	if n-1 > maxBoundedRetries {
		return 0, false
	}
	for k := uint32(0); k < n; k++ {
		d = satAdd(d, time.Duration(t.AttemptTimeout))
		if k+1 < n {
			d = satAdd(d, engine.RetryDelay(t.Retry, k, 1))
		}
	}
	return d, true
}

func satAdd(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// shapeOf is the step shape of e's record, given the commands it owes.
func shapeOf(e *entry, owed *engine.Effects) stepShape {
	var sh stepShape
	for i := range owed.Commands {
		sh.Tasks = append(sh.Tasks, owed.Commands[i].Task)
	}
	if sp := e.rec.Split; sp != nil {
		sh.JoinTimeout = time.Duration(sp.Join.Timeout)
	}
	if e.rec.Deadline > 0 {
		sh.HasDeadline, sh.UntilDeadline = true, time.Duration(e.rec.Deadline-e.rec.UpdatedAt)
	}
	return sh
}

// stallTicker returns the channel of the shard's stall checks, nil (never
// ready) when they are disabled, and a function that stops it.
func (s *shard) stallTicker() (<-chan time.Time, func()) {
	if s.c.cfg.StallCheckInterval < 0 {
		return nil, func() {}
	}
	t := time.NewTicker(s.c.cfg.StallCheckInterval)
	return t.C, t.Stop
}

// sweep re-drives the stalled runs in the shard's cache (see the top of
// this file). It runs on the shard's goroutine, which owns the cache.
func (s *shard) sweep(ctx context.Context) {
	c := s.c
	now := c.cfg.Now()
	queued := map[string]bool{} // task subject → tasks stream holds some
	var tasks jetstream.Stream
	reads := 0
	for id, e := range s.cache {
		if reads >= maxSweepReads {
			return
		}
		if _, busy := s.busy[id]; busy || e.rec.Status.Terminal() {
			continue // (busy: a store for it is in flight)
		}
		since := time.Unix(0, e.rec.UpdatedAt)
		if e.redrivenAt.After(since) {
			since = e.redrivenAt
		}
		idle := now.Sub(since)
		if idle < c.cfg.AckWait { // no step bound is shorter
			continue
		}
		if e.bound != 0 && idle < e.bound {
			continue
		}
		kctx, cancel := c.conn.Bind(ctx, kvTimeout)
		m, fx, err := s.owedOf(kctx, e)
		if err != nil {
			cancel()
			continue // not loadable now; an input for the run will say why
		}
		if e.bound == 0 {
			e.bound = stallBound(shapeOf(e, &fx), c.cfg.AckWait, c.cfg.StallAfter)
		}
		if idle < e.bound {
			cancel()
			continue
		}
		reads++
		delete(s.cache, id)
		fresh, err := s.load(kctx, id)
		if err != nil {
			cancel()
			if !errors.Is(err, jetstream.ErrKeyNotFound) {
				s.cache[id] = e
				return // the broker is in trouble: try again next time
			}
			continue
		}
		if fresh.rev != e.rev || fresh.rec.Status.Terminal() {
			cancel()
			continue // it moved (another replica drove it)
		}
		fresh.bound, fresh.redrivenAt, fresh.dyn = e.bound, now, e.dyn
		s.cache[id] = fresh
		if tasks == nil {
			if tasks, err = c.js.Stream(kctx, layout.TasksStream(c.names)); err != nil {
				cancel()
				return
			}
		}
		if s.backlogged(kctx, tasks, m, fx.Commands, queued) {
			cancel()
			c.log.Debug("run has not moved but its task queue is not empty; re-drive put off",
				"run_id", id, "state", e.rec.State, "idle", idle.Round(time.Second))
			continue
		}
		cancel()
		c.log.Warn("run has not moved for "+idle.Round(time.Second).String()+" at state "+e.rec.State+
			"; re-publishing what it owes", "run_id", id, "step", e.rec.Step, "expected_within", e.bound.Round(time.Second))
		c.stalled.Add(1)
		_ = s.publish(m, fresh.rec, &fx) // a failed publish is retried at the next bound
	}
}

// owedOf is what e's record owes, with its machine.
func (s *shard) owedOf(ctx context.Context, e *entry) (*engine.Machine, engine.Effects, error) {
	m, err := s.c.defs.machine(ctx, e.rec.Workflow, e.rec.DefVersion)
	if err != nil {
		return nil, engine.Effects{}, err
	}
	if err := s.loadSplitSpec(ctx, e); err != nil {
		return nil, engine.Effects{}, err
	}
	fx, err := engine.Owed(m, e.rec, e.dyn)
	return m, fx, err
}

// backlogged reports whether the tasks stream holds a command of any kind
// cmds are of (queued, or in flight: a work queue keeps a message until it
// is acknowledged). An error counts as backlogged (try again later).
func (s *shard) backlogged(ctx context.Context, tasks jetstream.Stream, m *engine.Machine, cmds []protocol.TaskCommand, queued map[string]bool) bool {
	queue := m.Definition().Queue
	for i := range cmds {
		subj := s.c.names.TaskSubject(queue, cmds[i].Task.Kind)
		q, seen := queued[subj]
		if !seen {
			info, err := tasks.Info(ctx, jetstream.WithSubjectFilter(subj))
			q = err != nil || info.State.Subjects[subj] > 0
			queued[subj] = q
		}
		if q {
			return true
		}
	}
	return false
}
