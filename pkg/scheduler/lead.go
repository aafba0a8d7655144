package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// leaderRun is one leadership term's state. Everything runs in the run
// goroutine, so nothing here needs a lock.
type leaderRun struct {
	s      *Scheduler
	epoch  uint64
	log    *slog.Logger
	kv     jetstream.KeyValue // schedules
	runsKV jetstream.KeyValue

	flows    map[string]*liveFlow
	status   map[string]*statusBox              // by flow id; may precede the flow in the watch
	triggers map[string]jetstream.KeyValueEntry // pending manual trigger requests
	runs     map[string]string                  // running run id -> flow id
	paused   int                                // flows whose status holds a pause (the flows_paused gauge)
	draining bool
}

type liveFlow struct {
	id          string
	sched       *protocol.Schedule
	flow        Flow
	plan        plan
	nextSlot    time.Time // cron: next slot to fire; zero if none
	catchUp     time.Time // cron catch_up: a missed slot to run now; zero if none
	needPublish bool      // reserved, but the trigger publish failed
	skipped     int       // slots skipped in a row (only the first is logged at info)
}

type statusBox struct {
	st  protocol.FlowStatus
	rev uint64 // 0: no stored status
}

// run leads until ctx is done, or until drained after Stop. A failing
// setup is retried while the term lasts.
func (l *leaderRun) run(ctx context.Context) error {
	for {
		err := l.runOnce(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		l.log.Error("leader loop failed; restarting", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (l *leaderRun) runOnce(ctx context.Context) error {
	l.flows = map[string]*liveFlow{}
	l.status = map[string]*statusBox{}
	l.triggers = map[string]jetstream.KeyValueEntry{}
	l.runs = map[string]string{}
	l.paused = 0
	l.s.metrics.setPaused(0)

	names := l.s.names
	var err error
	if l.kv, err = l.s.js.KeyValue(ctx, layout.SchedulesBucket(names)); err != nil {
		return fmt.Errorf("open %s: %w", layout.SchedulesBucket(names), err)
	}
	if l.runsKV, err = l.s.js.KeyValue(ctx, layout.RunsBucket(names)); err != nil {
		return fmt.Errorf("open %s: %w", layout.RunsBucket(names), err)
	}
	events := make(chan *nats.Msg, 4096)
	nc := l.s.js.Conn()
	for _, typ := range []protocol.EventType{protocol.EventCompleted, protocol.EventFailed,
		protocol.EventCancelled, protocol.EventRejected} {
		// Any workflow, any run, one terminal type.
		sub, err := nc.ChanSubscribe(names.EventSubject("*", "*", typ), events)
		if err != nil {
			return fmt.Errorf("subscribe events: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	w, err := l.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", layout.SchedulesBucket(names), err)
	}
	defer func() { _ = w.Stop() }()

	reconcile := time.NewTicker(l.s.cfg.ReconcileInterval)
	defer reconcile.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	drain := l.s.drain
	ready := false
	for {
		if ready {
			if l.draining && len(l.runs) == 0 {
				l.log.Info("drained")
				return nil
			}
			if !l.draining {
				l.fireDue(ctx)
			}
			timer.Reset(l.untilNextDue())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-drain:
			drain = nil
			l.draining = true
			if !ready {
				// Stopped before this term read its state: it has fired
				// nothing and tracks no run; the next leader recovers them.
				l.log.Info("drained before leading")
				return nil
			}
			l.log.Info("draining", "running", len(l.runs))
		case ent, ok := <-w.Updates():
			if !ok {
				return errors.New("schedules watcher closed")
			}
			if ent == nil {
				if !ready {
					ready = true
					l.recover(ctx)
				}
				continue
			}
			l.apply(ctx, ent, ready)
		case m := <-events:
			l.onEvent(ctx, m)
		case <-timer.C:
		case <-reconcile.C:
			l.reconcile(ctx, false)
		}
	}
}

func (l *leaderRun) now() time.Time { return l.s.cfg.Clock.Now() }

func (l *leaderRun) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.s.cfg.Timeout)
}

// apply folds one schedules-bucket change into the state.
func (l *leaderRun) apply(ctx context.Context, ent jetstream.KeyValueEntry, ready bool) {
	kind, id, ok := layout.ParseSchedulesKey(ent.Key())
	if !ok {
		return
	}
	defer l.countPause(id, l.isPaused(id))
	deleted := ent.Operation() != jetstream.KeyValuePut
	switch kind {
	case layout.SchedulesKeyFlow:
		if deleted {
			if _, ok := l.flows[id]; ok {
				l.log.Info("flow removed", "flow", id)
			}
			delete(l.flows, id)
			l.forgetRuns(id)
			return
		}
		var s protocol.Schedule
		if err := wirecodec.Decode(ent.Value(), &s, 0); err != nil {
			l.log.Error("bad stored flow; ignored", "flow", id, "err", err)
			return
		}
		if old, ok := l.flows[id]; ok && old.sched.Version == s.Version {
			return
		}
		f := flowFromWire(&s)
		p, err := compile(&f)
		if err != nil {
			l.log.Error("bad stored flow; ignored", "flow", id, "err", err)
			delete(l.flows, id)
			return
		}
		lf := &liveFlow{id: id, sched: &s, flow: f, plan: p}
		if old, ok := l.flows[id]; ok {
			lf.needPublish = old.needPublish
			l.log.Info("flow updated", "flow", id, "version", s.Version)
		}
		l.flows[id] = lf
		if ready {
			l.arm(lf, l.now(), false)
			if _, ok := l.triggers[id]; ok {
				l.handleTrigger(ctx, id)
			}
		}
	case layout.SchedulesKeyStatus:
		box := l.box(id)
		if deleted {
			box.st, box.rev = newStatus(id), 0
			l.forgetRuns(id)
			return
		}
		if ent.Revision() <= box.rev {
			return // our own write, or older
		}
		var st protocol.FlowStatus
		if err := wirecodec.Decode(ent.Value(), &st, 0); err != nil {
			l.log.Error("bad stored status; ignored", "flow", id, "err", err)
			return
		}
		box.st, box.rev = st, ent.Revision()
		l.forgetRuns(id)
		if st.Phase == protocol.FlowRunning && st.CurrentRun != "" {
			l.runs[st.CurrentRun] = id
		}
	case layout.SchedulesKeyTrigger:
		if deleted {
			delete(l.triggers, id)
			return
		}
		l.triggers[id] = ent
		if ready {
			l.handleTrigger(ctx, id)
		}
	}
}

// isPaused reports whether flow id is known and its status holds a pause.
func (l *leaderRun) isPaused(id string) bool {
	_, known := l.flows[id]
	b, ok := l.status[id]
	return known && ok && b.st.PausedAt != 0
}

// countPause updates the count of paused flows (and its gauge) after a
// change to flow id, which was paused before it if was.
func (l *leaderRun) countPause(id string, was bool) {
	now := l.isPaused(id)
	switch {
	case now && !was:
		l.paused++
	case was && !now:
		l.paused--
	default:
		return
	}
	l.s.metrics.setPaused(l.paused)
}

func (l *leaderRun) box(id string) *statusBox {
	b, ok := l.status[id]
	if !ok {
		b = &statusBox{st: newStatus(id)}
		l.status[id] = b
	}
	return b
}

func (l *leaderRun) forgetRuns(id string) {
	for run, fid := range l.runs {
		if fid == id {
			delete(l.runs, run)
		}
	}
}

// recover runs once the initial state is read: arm every flow (catch-up
// included), re-publish triggers of reserved runs that never started, and
// act on pending manual triggers.
func (l *leaderRun) recover(ctx context.Context) {
	now := l.now()
	for _, lf := range l.flows {
		l.arm(lf, now, true)
	}
	l.reconcile(ctx, true)
	l.log.Info("leading", "flows", len(l.flows), "running", len(l.runs))
}

// arm computes a cron flow's next slot, and at the start of a term its
// catch-up slot.
func (l *leaderRun) arm(lf *liveFlow, now time.Time, termStart bool) {
	lf.nextSlot, lf.catchUp = time.Time{}, time.Time{}
	if lf.plan.kind != KindCron {
		return
	}
	lf.nextSlot = lf.plan.next(now)
	st := l.box(lf.id).st
	if termStart && lf.flow.Misfire == MisfireCatchUp && st.LastSlot > 0 && st.PausedAt == 0 {
		// Slots missed while paused are not caught up (reserve refuses
		// them), so start after the resume.
		lf.catchUp = lf.plan.latestMissed(time.Unix(0, max(st.LastSlot, st.ResumedAt)), now, catchUpScanLimit)
	}
}

// untilNextDue is how long until some flow is due, at most a minute.
func (l *leaderRun) untilNextDue() time.Duration {
	now := l.now()
	d := time.Minute
	consider := func(t time.Time) {
		if w := t.Sub(now); w < d {
			d = max(w, 0)
		}
	}
	for _, lf := range l.flows {
		switch lf.plan.kind {
		case KindCron:
			if !lf.catchUp.IsZero() {
				consider(lf.catchUp)
			}
			if !lf.nextSlot.IsZero() {
				consider(lf.nextSlot)
			}
		case KindEvery:
			if t, ok := l.everyDue(lf); ok {
				consider(t)
			}
		}
	}
	return d
}

// everyDue is when an Every flow runs next; false while running, tripped
// or paused.
func (l *leaderRun) everyDue(lf *liveFlow) (time.Time, bool) {
	st := l.box(lf.id).st
	if st.Phase == protocol.FlowRunning || st.Phase == protocol.FlowTripped || st.PausedAt != 0 {
		return time.Time{}, false
	}
	if st.NextEligible == 0 {
		return time.Time{}, true
	}
	return time.Unix(0, st.NextEligible), true
}

// fireDue fires every flow whose time has come.
func (l *leaderRun) fireDue(ctx context.Context) {
	now := l.now()
	for _, lf := range l.flows {
		switch lf.plan.kind {
		case KindCron:
			if !lf.catchUp.IsZero() {
				slot := lf.catchUp
				lf.catchUp = time.Time{}
				l.log.Info("catching up a missed slot", "flow", lf.id, "slot", slot)
				l.fire(ctx, lf, fireCron, slot)
			}
			for !lf.nextSlot.IsZero() && !lf.nextSlot.After(now) {
				slot := lf.nextSlot
				if now.Sub(slot) > l.s.cfg.MisfireThreshold {
					// Too late: the slots up to now are missed.
					lf.nextSlot = lf.plan.next(now)
					if lf.flow.Misfire == MisfireCatchUp {
						l.fire(ctx, lf, fireCron, lf.plan.latestMissed(slot.Add(-time.Nanosecond), now, catchUpScanLimit))
					}
					break
				}
				lf.nextSlot = lf.plan.next(slot)
				l.fire(ctx, lf, fireCron, slot)
			}
		case KindEvery:
			if t, ok := l.everyDue(lf); ok && !t.After(now) {
				slot := t
				if t.IsZero() {
					slot = now
				}
				l.fire(ctx, lf, fireEvery, slot)
			}
		}
	}
}

// fire reserves the flow for slot and publishes its trigger.
func (l *leaderRun) fire(ctx context.Context, lf *liveFlow, k fireKind, slot time.Time) decision {
	if slot.IsZero() {
		return decideNoop
	}
	runID := layout.FlowRunID(lf.id, slot.UnixNano())
	now := l.now()
	var dec decision
	err := l.mutate(ctx, lf.id, func(st protocol.FlowStatus) (protocol.FlowStatus, bool) {
		var ns protocol.FlowStatus
		ns, dec = reserve(st, k, slot, runID, now)
		return ns, dec == decideFire || dec == decideSkip
	})
	if err != nil {
		l.log.Error("reserve failed", "flow", lf.id, "run", runID, "err", err)
		return decideError
	}
	switch dec {
	case decideFire:
		if lf.skipped > 1 {
			l.log.Info("flow fires again", "flow", lf.id, "slots_skipped", lf.skipped)
		}
		lf.skipped = 0
		l.runs[runID] = lf.id
		l.publish(ctx, lf, runID, slot)
	case decideSkip:
		l.s.metrics.skipped(lf.id)
		lf.skipped++
		// A run that does not end skips every slot: the first skip in a
		// row is logged at info, the others at debug
		// (cano_scheduler_skips_total counts them all).
		level := slog.LevelDebug
		if lf.skipped == 1 {
			level = slog.LevelInfo
		}
		l.log.Log(ctx, level, "fire skipped: the flow is running, backing off or tripped (phase says which); "+
			"its slots are skipped until it may fire again", "flow", lf.id, "slot", slot, "phase", l.box(lf.id).st.Phase)
	case decideRejectBusy, decideRejectTrips:
		l.log.Info("manual trigger rejected", "flow", lf.id, "why", dec)
	}
	return dec
}

// mutate applies fn to the flow's status and writes it with CAS, re-reading
// and re-applying on conflicts. fn returns false to write nothing.
func (l *leaderRun) mutate(ctx context.Context, id string, fn func(protocol.FlowStatus) (protocol.FlowStatus, bool)) error {
	defer l.countPause(id, l.isPaused(id)) // a conflict re-reads the status, which a client may have paused
	box := l.box(id)
	key := layout.FlowStatusKey(id)
	for range casAttempts {
		ns, write := fn(box.st)
		if !write {
			return nil
		}
		data, err := wirecodec.Encode(&ns)
		if err != nil {
			return err
		}
		cctx, cancel := l.opCtx(ctx)
		var rev uint64
		if box.rev == 0 {
			rev, err = l.kv.Create(cctx, key, data)
		} else {
			rev, err = l.kv.Update(cctx, key, data, box.rev)
		}
		if err == nil {
			cancel()
			box.st, box.rev = ns, rev
			return nil
		}
		if !kvcas.Conflict(err) {
			cancel()
			return err
		}
		st, rev, err := readStatus(cctx, l.kv, id)
		cancel()
		if err != nil {
			return err
		}
		box.st, box.rev = st, rev
		if rev == 0 {
			// The status vanished under us: the flow is being removed.
			// Do not resurrect it.
			return fmt.Errorf("%w: %q (removed)", ErrFlowNotFound, id)
		}
	}
	return ErrConflict
}

// publish sends the trigger of a reserved run. Its run id and Nats-Msg-Id
// derive from flow and slot, so a re-publish (by us or another leader)
// starts nothing new.
func (l *leaderRun) publish(ctx context.Context, lf *liveFlow, runID string, slot time.Time) {
	tr := &protocol.Trigger{
		V:            protocol.SchemaVersion,
		Workflow:     lf.sched.Workflow,
		InitialState: lf.sched.InitialState,
		Input:        lf.sched.Input,
		RunID:        runID,
		Flow:         lf.id,
		Slot:         slot.UnixNano(),
		Epoch:        l.epoch,
	}
	data, err := wirecodec.Encode(tr)
	if err == nil {
		cctx, cancel := l.opCtx(ctx)
		_, err = l.s.js.Publish(cctx, l.s.names.TriggerSubject(tr.Workflow), data, jetstream.WithMsgID(runID))
		cancel()
	}
	if err != nil {
		lf.needPublish = true
		l.log.Error("trigger publish failed; will retry", "flow", lf.id, "run", runID, "err", err)
		return
	}
	lf.needPublish = false
	l.s.metrics.fired(lf.id)
	l.log.Debug("fired", "flow", lf.id, "run", runID)
}

// onEvent handles a terminal (or rejected) run event.
func (l *leaderRun) onEvent(ctx context.Context, m *nats.Msg) {
	var ev protocol.Event
	if err := wirecodec.Decode(m.Data, &ev, 0); err != nil {
		return
	}
	id, ok := l.runs[ev.RunID]
	if !ok {
		return
	}
	out := outcomeFailed
	switch ev.Type {
	case protocol.EventCompleted:
		out = outcomeCompleted
	case protocol.EventCancelled:
		out = outcomeCancelled
	}
	msg := ev.Detail
	if ev.Error != nil {
		msg = ev.Error.Message
	}
	if msg == "" && out == outcomeFailed {
		msg = "run " + string(ev.Type)
	}
	l.end(ctx, id, ev.RunID, out, msg)
}

// end records how runID of flow id ended.
func (l *leaderRun) end(ctx context.Context, id, runID string, out outcome, errMsg string) {
	lf, ok := l.flows[id]
	if !ok {
		delete(l.runs, runID)
		return
	}
	var every time.Duration
	if lf.plan.kind == KindEvery {
		every = lf.plan.every
	}
	now := l.now()
	r := l.s.cfg.JitterFunc()
	err := l.mutate(ctx, id, func(st protocol.FlowStatus) (protocol.FlowStatus, bool) {
		return finish(st, runID, out, errMsg, lf.flow.Backoff, every, now, r)
	})
	if err != nil {
		l.log.Error("recording run end failed; will retry", "flow", id, "run", runID, "err", err)
		return
	}
	delete(l.runs, runID)
	lf.needPublish = false
	st := l.box(id).st
	l.s.metrics.ended(id, st.Phase)
	l.log.Debug("run ended", "flow", id, "run", runID, "phase", st.Phase, "streak", st.FailureStreak)
}

// reconcile reads the run record of every running flow: a terminal record
// ends the flow's run (a missed event); a missing one after a failed
// publish, or at the start of a term, gets its trigger re-published.
func (l *leaderRun) reconcile(ctx context.Context, termStart bool) {
	for runID, id := range l.runs {
		lf, ok := l.flows[id]
		if !ok {
			continue
		}
		cctx, cancel := l.opCtx(ctx)
		e, err := l.runsKV.Get(cctx, layout.RunKey(runID))
		cancel()
		switch {
		case err == nil:
			var rec protocol.RunRecord
			if err := wirecodec.Decode(e.Value(), &rec, 0); err != nil {
				l.log.Error("bad run record", "run", runID, "err", err)
				continue
			}
			if !rec.Status.Terminal() {
				continue
			}
			out, msg := outcomeCompleted, ""
			switch rec.Status {
			case protocol.RunFailed:
				out, msg = outcomeFailed, "run failed"
			case protocol.RunCancelled:
				out = outcomeCancelled
			}
			if rec.Error != nil {
				msg = rec.Error.Message
			}
			l.end(ctx, id, runID, out, msg)
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			if termStart || lf.needPublish {
				st := l.box(id).st
				slot := st.LastRun
				if lf.plan.kind == KindCron && st.LastSlot != 0 {
					slot = st.LastSlot
				}
				l.publish(ctx, lf, runID, time.Unix(0, slot))
			}
		default:
			l.log.Warn("reading run record failed", "run", runID, "err", err)
		}
	}
	if !l.draining {
		for id := range l.triggers {
			l.handleTrigger(ctx, id)
		}
	}
}

// handleTrigger acts once on a pending manual trigger request.
func (l *leaderRun) handleTrigger(ctx context.Context, id string) {
	ent, ok := l.triggers[id]
	if !ok || l.draining {
		return
	}
	if lf, ok := l.flows[id]; ok {
		slot := ent.Created()
		runID := layout.FlowRunID(id, slot.UnixNano())
		cctx, cancel := l.opCtx(ctx)
		_, err := l.runsKV.Get(cctx, layout.RunKey(runID))
		cancel()
		switch {
		case err == nil:
			// Already started by an earlier leader; only the marker is left.
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			if d := l.fire(ctx, lf, fireManual, slot); d == decideError || lf.needPublish {
				return // keep the request and retry at the next reconcile
			}
		default:
			l.log.Warn("manual trigger: reading run record failed; will retry", "flow", id, "err", err)
			return
		}
	}
	cctx, cancel := l.opCtx(ctx)
	defer cancel()
	if err := l.kv.Delete(cctx, layout.FlowTriggerKey(id), jetstream.LastRevision(ent.Revision())); err != nil &&
		!kvcas.Conflict(err) {
		l.log.Warn("manual trigger: deleting request failed; will retry", "flow", id, "err", err)
		return
	}
	delete(l.triggers, id)
}
