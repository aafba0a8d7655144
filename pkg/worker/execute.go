package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/dlq"
	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/kvwatch"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/tracectx"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/protocol"
)

const publishTimeout = 10 * time.Second

// errCancelledByRun marks a task context cancelled by a cancel notice. A
// task sees it as context.Cause(ctx), matching fsm.ErrCancelled.
var errCancelledByRun = fmt.Errorf("worker: run or branch cancelled: %w", fsm.ErrCancelled)

type outcome struct {
	res fsm.Result
	err error
	// final: not retried although err is not Permanent (a panic keeps its
	// task-execution category on the wire, as the fsm.Task doc promises).
	final bool
}

// execute runs one command's attempt and settles the command. pending
// reports that its result awaits a PubAck (results.go): the command, its
// task slot and its place in w.tasks are then settled by the PubAck's
// handler.
func (w *Worker) execute(m jetstream.Msg) (pending bool) {
	// The command's lease is kept (heartbeated) until it is settled.
	msg := w.leases.hold(m)
	defer func() {
		if !pending {
			w.leases.release(msg)
		}
	}()
	cmd := new(protocol.TaskCommand)
	if err := wirecodec.Decode(msg.Data(), cmd, w.cfg.MaxPayload); err != nil {
		w.deadLetter(msg, err)
		return
	}
	attempt := 1
	if md, err := msg.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	policy := cmd.Task.Retry
	maxAttempts := int(engine.MaxAttempts(policy))
	switch admit(cmd, attempt, maxAttempts, w.isCancelled(cmd.RunID, cmd.Step), time.Now()) { // decide.go
	case admitSkip:
		_ = msg.Ack()
		return
	case admitAbandon:
		// Give up, but only after abandonGrace, holding the command: a
		// live holder's result lands first and this one is de-duplicated.
		if !w.abandonGrace() {
			_ = msg.NakWithDelay(stopHandBackDelay) // shutting down: hand the command back
			return
		}
		return w.finish(msg, cmd, &finishing{attempts: attempt - 1, err: abandoned(maxAttempts), storeUsed: true})
	}
	task, err := fsmbridge.BuildTask(w.cfg.Registry, &cmd.Task)
	if err != nil {
		return w.finish(msg, cmd, &finishing{attempts: attempt, err: fsm.Permanent(err), storeUsed: attempt > 1})
	}
	var permit Permit
	if cmd.Task.Breaker != "" && w.cfg.Breakers != nil {
		permit, err = w.cfg.Breakers.Acquire(w.stopping.Context(), cmd.Task.Breaker, cmd.Task.BreakerPolicy)
		if err != nil {
			// Open: the attempt is not made and no attempt is consumed; the
			// raw CircuitOpen error fails the task at once (cano §2.3).
			w.metrics.refusedOpen(cmd)
			return w.finish(msg, cmd, &finishing{attempts: attempt - 1, err: circuitOpen{err}, storeUsed: attempt > 1})
		}
		if r, ok := permit.(permitReleaser); ok {
			// A permit never reported (a panic below) still frees its
			// half-open trial slot, as a failure; after a report it is a no-op.
			defer r.Release()
		}
	}

	ctx, cancel := context.WithCancelCause(w.stopping.Context())
	defer cancel(nil)
	reg := w.track(cmd, cancel)
	defer w.untrack(cmd.RunID, reg)
	attemptCtx := ctx
	if cmd.Task.AttemptTimeout > 0 {
		var c context.CancelFunc
		attemptCtx, c = context.WithTimeoutCause(ctx, time.Duration(cmd.Task.AttemptTimeout), errAttemptTimeout)
		defer c()
	}
	tc := w.newTaskContext(cmd, attempt, maxAttempts, w.taskLog(cmd, attempt), w.branchOutcomes(cmd))
	tc.Resources = w.cfg.Resources
	store := &trackedStore{Store: kvstore.Scoped(w.store, kvstore.RunScope(cmd.RunID))}
	tc.Store = store

	if h := w.cfg.Hooks.AttemptStarted; h != nil {
		h(cmd, attempt)
	}
	done := make(chan outcome, 1)
	w.metrics.attemptStarted()
	attemptCtx, endSpan := w.traceAttempt(attemptCtx, msg, cmd, attempt) // tracing.go
	ran := attemptSpan{start: time.Now()}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				w.log.Error("task panicked", "run_id", cmd.RunID, "kind", cmd.Task.Kind, "panic", p, "stack", string(debug.Stack()))
				done <- outcome{err: fsm.NewError(protocol.CategoryTaskExecution, "panic: %v", p), final: true}
			}
		}()
		r, err := task.Run(attemptCtx, tc)
		done <- outcome{res: r, err: err}
	}()
	var out outcome
	select {
	case out = <-done:
		ran.took = time.Since(ran.start)
		out.err = attemptErr(cmd, true, out.err, context.Cause(attemptCtx), nil)
	case <-attemptCtx.Done():
		ran.took = time.Since(ran.start)
		out.err = attemptErr(cmd, false, nil, context.Cause(attemptCtx), context.Cause(ctx))
	}
	w.metrics.attemptEnded(cmd, out.err, ran.took)
	endSpan(out.err)
	if h := w.cfg.Hooks.AttemptEnded; h != nil {
		h(cmd, attempt, out.err)
	}
	if permit != nil {
		if breakerOK(out) { // decide.go
			permit.Success(context.WithoutCancel(ctx))
		} else {
			permit.Failure(context.WithoutCancel(ctx))
		}
	}
	// Cancelled or stopping is read after the permit's report, which may
	// take a round trip (a shared breaker).
	d := decide(out, attempt, maxAttempts, policy, errors.Is(context.Cause(ctx), errCancelledByRun),
		w.stopping.Fired(), rand.Float64()*2-1) // decide.go
	switch d.verdict {
	case verdictDrop:
		_ = msg.Ack() // nobody waits for this result any more
	case verdictHandBack:
		_ = msg.NakWithDelay(stopHandBackDelay)
	case verdictFinish:
		pending = w.finish(msg, cmd, &finishing{attempts: attempt, res: out.res, err: d.err, storeUsed: store.usedBy(attempt), ran: ran})
	case verdictRetry:
		w.log.Debug("attempt failed; retrying", "run_id", cmd.RunID, "state", cmd.State, "attempt", attempt, "delay", d.delay, "err", out.err)
		w.metrics.retried(cmd)
		w.event(cmd, protocol.EventTaskRetried, retryDetail(cmd, attempt, d.delay, out.err))
		_ = msg.NakWithDelay(d.delay)
	}
	return pending
}

// errAttemptTimeout marks a task context ended by its attempt timeout. A
// task sees it as context.Cause(ctx), matching fsm.ErrTimeout.
var errAttemptTimeout = fmt.Errorf("worker: attempt timeout: %w", fsm.ErrTimeout)

// attemptSpan is when an attempt's task began and how long it ran, for the
// run history (protocol.TaskResult.AttemptStarted).
type attemptSpan struct {
	start time.Time
	took  time.Duration
}

// loadInput reads the run input a command left in the run record (see
// protocol.TaskCommand.InputInRecord).
func (w *Worker) loadInput(runID string) func(ctx context.Context) ([]byte, protocol.InputFormat, error) {
	return func(ctx context.Context) ([]byte, protocol.InputFormat, error) {
		// "Gone" is permanent: a replica that lags may not have the record
		// yet, so the stream leader confirms it first (kvread).
		e, err := w.runsRead.Get(ctx, layout.RunKey(runID), 0)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, "", fsm.Permanent(fsm.NewError(protocol.CategoryStore, "run record %s is gone: its input cannot be read", runID))
		}
		if err != nil {
			return nil, "", err // retried by TaskContext.Input
		}
		var rec protocol.RunRecord
		// The bucket's own values: bounded by the bucket's limit, which
		// may exceed this worker's MaxPayload.
		if err := wirecodec.Decode(e.Value(), &rec, w.runsRead.Limit(ctx)); err != nil {
			return nil, "", fsm.Permanent(fmt.Errorf("run record %s: %w", runID, err))
		}
		return rec.Input, rec.InputFormat, nil
	}
}

func timeoutError(cmd *protocol.TaskCommand) error {
	return fsm.NewError(protocol.CategoryTimeout, "task attempt exceeded attempt_timeout (%s)", time.Duration(cmd.Task.AttemptTimeout))
}

// circuitOpen carries a breaker rejection as a CircuitOpen error that is
// never wrapped in RetryExhausted.
type circuitOpen struct{ err error }

func (c circuitOpen) Error() string { return "circuit_open: " + c.err.Error() }
func (c circuitOpen) Is(t error) bool {
	return t == fsm.ErrCircuitOpen || t == fsm.ErrPermanent
}

// finish reports the final outcome of a command: the branch outcome (for
// split branches) goes to KV, then the result is published, then the
// command is acknowledged once the result's PubAck is in. While the broker
// refuses the outcome, finish keeps the command (its lease) and retries
// (see Config.ResultRetry), so a broker outage costs no attempt; only then
// is the command handed back. pending reports that the result awaits its
// PubAck (results.go), which settles the command.
func (w *Worker) finish(msg jetstream.Msg, cmd *protocol.TaskCommand, f *finishing) (pending bool) {
	r, data, err := taskResult(cmd, f, w.cfg.ID, w.cfg.MaxPayload) // result.go
	if err != nil {
		w.log.Error("encode result", "run_id", cmd.RunID, "err", err)
		_ = msg.Term()
		return false
	}
	var branchData []byte
	if branchData, err = branchOutcome(cmd, r); err != nil {
		w.log.Error("encode branch outcome", "run_id", cmd.RunID, "err", err)
		_ = msg.Term()
		return false
	}
	// The header map is built directly: Header.Set would canonicalise the
	// (already canonical) key on every result.
	out := &nats.Msg{Subject: w.names.ResultSubject(cmd.RunID), Data: data,
		Header: nats.Header{jetstream.MsgIDHeader: {layout.ResultMsgID(cmd.RunID, cmd.Step, cmd.Branch)}}}
	tracectx.Copy(out.Header, msg.Headers()) // the run's trace goes on (tracing.go)
	since := time.Now()
	if branchData != nil {
		err = w.deliver("branch outcome", cmd.RunID, since, nil, func(ctx context.Context) error {
			if _, err := w.branches.Put(ctx, layout.BranchKey(cmd.RunID, cmd.Step, cmd.Branch), branchData); err != nil {
				return fmt.Errorf("store branch outcome: %w", err)
			}
			return nil
		})
		if err != nil {
			w.handBack(msg, cmd, err)
			return false
		}
	}
	if w.sendResult(msg, cmd, out, since) || w.publishResult(msg, cmd, out, since) { // resultrpc.go, results.go
		return true
	}
	w.deliverResult(msg, cmd, out, since, nil)
	return false
}

func (w *Worker) branchOutcomes(cmd *protocol.TaskCommand) func(ctx context.Context) ([]fsm.BranchOutcome, error) {
	if cmd.JoinBranches == 0 {
		return nil
	}
	return func(ctx context.Context) ([]fsm.BranchOutcome, error) {
		out := make([]fsm.BranchOutcome, cmd.JoinBranches)
		for i := range out {
			out[i] = fsm.BranchOutcome{Index: i, Status: protocol.BranchCancelled}
		}
		if cmd.JoinBranches > branchWatchMin {
			return out, w.watchBranchOutcomes(ctx, cmd, out)
		}
		for i := range out {
			e, err := w.branches.Get(ctx, layout.BranchKey(cmd.RunID, cmd.JoinOf, int32(i)))
			if err != nil {
				if errors.Is(err, jetstream.ErrKeyNotFound) {
					continue
				}
				return nil, fmt.Errorf("%w: branch %d outcome: %v", fsm.ErrStore, i, err)
			}
			if err := setBranchOutcome(&out[i], e.Value()); err != nil {
				return nil, fmt.Errorf("%w: branch %d outcome: %v", fsm.ErrStore, i, err)
			}
		}
		return out, nil
	}
}

// branchWatchMin: a join over more branches reads their outcomes with one
// watch over the step's keys (a stream of every value) instead of one KV
// get per branch — 10,000 gets in sequence take seconds.
const branchWatchMin = 32

// branchWatchTimeout bounds reading a join's outcomes when the task's
// context has no deadline (no attempt timeout).
const branchWatchTimeout = time.Minute

// watchBranchOutcomes fills out from the current values under the join's
// step; branches without an outcome stay cancelled.
func (w *Worker) watchBranchOutcomes(ctx context.Context, cmd *protocol.TaskCommand, out []fsm.BranchOutcome) error {
	ctx, cancel := deadline.Default(ctx, branchWatchTimeout)
	defer cancel()
	err := kvwatch.Current(ctx, w.js, w.branches, layout.StepBranchesWildcard(cmd.RunID, cmd.JoinOf), func(e jetstream.KeyValueEntry) error {
		key := e.Key()
		i, err := strconv.Atoi(key[strings.LastIndexByte(key, '.')+1:])
		if err != nil || i < 0 || i >= len(out) {
			return nil // the dynamic split's spec, or not a branch of this join
		}
		if err := setBranchOutcome(&out[i], e.Value()); err != nil {
			return fmt.Errorf("%w: branch %d outcome: %v", fsm.ErrStore, i, err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fsm.ErrStore) {
		return fmt.Errorf("%w: branch outcomes: %v", fsm.ErrStore, err)
	}
	return err
}

func setBranchOutcome(o *fsm.BranchOutcome, data []byte) error {
	var bo protocol.BranchOutcome
	if err := wirecodec.Decode(data, &bo, 0); err != nil {
		return err
	}
	o.Status, o.Output = bo.Status, bo.Output
	if bo.Error != nil {
		o.Err = fsmbridge.FromErrorInfo(bo.Error)
	}
	return nil
}

// retryDetail is a retry event's detail: which attempt failed (of which
// split branch), when the next comes, and why.
func retryDetail(cmd *protocol.TaskCommand, attempt int, delay time.Duration, err error) string {
	if delay >= time.Millisecond {
		delay = delay.Round(time.Millisecond)
	}
	if cmd.Branch >= 0 {
		return fmt.Sprintf("branch %d (%s): attempt %d failed, next in %s: %v", cmd.Branch, cmd.Task.Kind, attempt, delay, err)
	}
	return fmt.Sprintf("attempt %d failed, next in %s: %v", attempt, delay, err)
}

func (w *Worker) event(cmd *protocol.TaskCommand, typ protocol.EventType, detail string) {
	ev := &protocol.Event{V: protocol.SchemaVersion, Type: typ, RunID: cmd.RunID, Workflow: cmd.Workflow,
		State: cmd.State, Step: cmd.Step, Status: protocol.RunRunning, Time: time.Now().UnixNano(), Detail: detail}
	_ = publishEvent(w.nc, w.names.EventSubject(cmd.Workflow, cmd.RunID, typ), ev)
}

func (w *Worker) deadLetter(msg jetstream.Msg, reason error) {
	w.log.Warn("refused task command", "subject", msg.Subject(), "err", reason)
	w.metrics.deadLetter("task")
	letter := dlq.Letter(w.names, "task", msg, reason, time.Now())
	err := w.deliver("dead letter", "", time.Now(), nil, func(ctx context.Context) error {
		_, err := w.js.PublishMsg(ctx, letter)
		return err
	})
	if err != nil {
		w.handBack(msg, nil, fmt.Errorf("dead-letter: %w", err))
		return
	}
	_ = msg.TermWithReason(reason.Error())
}

// Cancellation.

func (w *Worker) onNotice(m *nats.Msg) {
	var n protocol.CancelNotice
	if err := wirecodec.Decode(m.Data, &n, 0); err != nil {
		return
	}
	now := time.Now()
	w.cmu.Lock()
	defer w.cmu.Unlock()
	mark := w.cancelled[n.RunID]
	mark.at = now
	if n.All {
		mark.all = true
	} else {
		if mark.steps == nil {
			mark.steps = map[uint32]bool{}
		}
		mark.steps[n.Step] = true
	}
	w.cancelled[n.RunID] = mark
	for r := w.running[n.RunID]; r != nil; r = r.next {
		if n.All || r.step == n.Step {
			r.cancel(errCancelledByRun)
		}
	}
	if len(w.cancelled) > 4096 {
		for id, m := range w.cancelled {
			if now.Sub(m.at) > CancelMemoryDefault {
				delete(w.cancelled, id)
			}
		}
	}
}

func (w *Worker) isCancelled(runID string, step uint32) bool {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	m, ok := w.cancelled[runID]
	return ok && (m.all || m.steps[step])
}

func (w *Worker) track(cmd *protocol.TaskCommand, cancel context.CancelCauseFunc) *running {
	r := &running{step: cmd.Step, branch: cmd.Branch, cancel: cancel}
	w.cmu.Lock()
	defer w.cmu.Unlock()
	r.next = w.running[cmd.RunID]
	w.running[cmd.RunID] = r
	return r
}

func (w *Worker) untrack(runID string, r *running) {
	w.cmu.Lock()
	defer w.cmu.Unlock()
	head := w.running[runID]
	if head == r {
		head = r.next
	} else {
		for p := head; p != nil; p = p.next {
			if p.next == r {
				p.next = r.next
				break
			}
		}
	}
	if head == nil {
		delete(w.running, runID)
	} else {
		w.running[runID] = head
	}
}
