package coordinator

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// The decisions of a shard, as pure functions: how a batch of inputs is
// grouped (eachGroup), what becomes of inputs whose run cannot be read
// (missing), what applying a group to the record in hand gives (applyInputs)
// and what comes next (step.plan), and what a compare-and-set's outcome
// means (afterWrite). shard.go is the I/O around them.

// groupKind is how handleBatch handles a group of inputs.
type groupKind uint8

const (
	groupApply   groupKind = iota // results, timers and cancels of one run, applied with one write
	groupTrigger                  // a trigger (alone)
	groupPurge                    // a purge timer (alone)
)

// eachGroup calls fn, in order, for the groups of batch: a trigger or a
// purge timer alone; otherwise an input with the inputs of its run after it
// up to that run's next trigger (which must see them applied first). done
// marks the inputs taken into an earlier group; it has len(batch) and is
// false on entry. A stop job ends the walk: eachGroup reports whether it
// met one. fn's group is only valid during the call.
func eachGroup(batch []job, done []bool, group []job, fn func(groupKind, []job)) (stop bool) {
	for i, j := range batch {
		if done[i] {
			continue
		}
		if j.stop {
			return true
		}
		if j.trig != nil {
			fn(groupTrigger, batch[i:i+1])
			continue
		}
		if isPurge(j) {
			fn(groupPurge, batch[i:i+1])
			continue
		}
		group = append(group[:0], j)
		for k := i + 1; k < len(batch); k++ {
			if done[k] || batch[k].stop || batch[k].runID != j.runID || isPurge(batch[k]) {
				continue
			}
			if batch[k].trig != nil {
				break // keep the run's order: the trigger comes after
			}
			group = append(group, batch[k])
			done[k] = true
		}
		fn(groupApply, group)
	}
	return false
}

func isPurge(j job) bool { return j.timer != nil && j.timer.Kind == protocol.TimerPurge }

// missingAction is what becomes of an input whose run record could not be
// read.
type missingAction uint8

const (
	missingNak    missingAction = iota // the read failed: retry the input later
	missingReject                      // no such run: dead-letter the input
	missingAck                         // no such run, and nothing to do (a timer of a purged run)
)

// missing decides for j, whose run's record read failed with err. An
// absent run (jetstream.ErrKeyNotFound, confirmed with the leader) refuses
// results and cancels with an error that says so; any other error is
// retried. A first-step result delivered the first time is retried once:
// the run's record may be about to be written by the coordinator that took
// its trigger request (requests.go) and the result, from a worker that
// does not echo the start, cannot write it.
func missing(j job, err error) (missingAction, string, error) {
	switch {
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return missingNak, "", err
	case j.res != nil && j.res.Step == 0 && j.res.Start == nil && j.delivered == 1:
		return missingNak, "", fmt.Errorf("%w: result for run %q, which has no record yet: retried once in case its trigger request is still being handled", fsm.ErrWorkflow, j.runID)
	case j.res != nil:
		return missingReject, "result", fmt.Errorf("%w: result for unknown run %q", fsm.ErrWorkflow, j.runID)
	case j.cancel != nil:
		return missingReject, "control", fmt.Errorf("%w: cancel for unknown run %q", fsm.ErrWorkflow, j.runID)
	case j.startNow:
		return missingReject, "control", fmt.Errorf("%w: start-now for unknown run %q", fsm.ErrWorkflow, j.runID)
	}
	return missingAck, "", nil
}

// step is the outcome of applying a group of inputs, in order, to a run's
// record.
type step struct {
	rec *protocol.RunRecord // the record after the inputs (the input record if none changed it)
	dyn *protocol.SplitSpec // the dynamic split in force after them
	fx  engine.Effects      // the merged effects of the applied inputs
	// specs are the dynamic split specs to store before the record.
	specs []splitSpecPut
	// applied changed the record; unchanged did not (duplicates, late
	// results); kept is both, in order; failed were refused by the engine.
	applied, unchanged, kept []job
	failed                   []jobErr
}

type jobErr struct {
	j   job
	err error
}

type splitSpecPut struct {
	step uint32
	spec *protocol.SplitSpec
}

// applyInputs applies jobs to rec (with dyn, the run's dynamic split, if
// any) at now.
func applyInputs(m *engine.Machine, rec *protocol.RunRecord, dyn *protocol.SplitSpec, jobs []job, now time.Time) step {
	st := step{rec: rec, dyn: dyn}
	for _, j := range jobs {
		in := engine.Input{Result: j.res, Timer: j.timer, Cancel: j.cancel, DynamicSplit: st.dyn}
		if j.startNow {
			// The start timer, fired now: the engine starts a run still
			// scheduled, and ignores it for any other.
			tf := *j.timer
			tf.At = st.rec.StartAt
			in.Timer = &tf
		}
		next, jfx, err := engine.Apply(m, st.rec, in, now)
		if err != nil {
			st.failed = append(st.failed, jobErr{j, err})
			continue
		}
		st.kept = append(st.kept, j)
		if !jfx.Changed {
			st.unchanged = append(st.unchanged, j)
			continue
		}
		st.rec = next
		st.applied = append(st.applied, j)
		if jfx.PutSplitSpec != nil {
			st.dyn = jfx.PutSplitSpec
			st.specs = append(st.specs, splitSpecPut{step: st.rec.Step, spec: jfx.PutSplitSpec})
		}
		mergeEffects(&st.fx, &jfx)
	}
	return st
}

// mergeEffects appends the effects of a later input to those of earlier
// ones applied in the same write.
func mergeEffects(dst, src *engine.Effects) {
	dst.Changed = true
	dst.Commands = append(dst.Commands, src.Commands...)
	dst.Timers = append(dst.Timers, src.Timers...)
	dst.Unschedule = append(dst.Unschedule, src.Unschedule...)
	dst.Notices = append(dst.Notices, src.Notices...)
	dst.Events = append(dst.Events, src.Events...)
	dst.Ended = dst.Ended || src.Ended
}

// stepPlan is what a shard does after applying a group.
type stepPlan uint8

const (
	planWrite   stepPlan = iota // write the record with a compare-and-set
	planRefresh                 // re-read the record and apply the group again
	planSettle                  // nothing changed: settle the unchanged inputs
)

// plan decides what follows st; fresh says the record was read from KV
// for this group (not the cache). An input that changed nothing on a
// cached record may be a sign the cache is stale (another coordinator
// moved the run on): the record is re-read before an input is called a
// duplicate.
func (st *step) plan(fresh bool) stepPlan {
	switch {
	case len(st.unchanged) > 0 && !fresh:
		return planRefresh
	case len(st.applied) == 0:
		return planSettle
	}
	return planWrite
}

// writeOutcome is what a compare-and-set's result means.
type writeOutcome uint8

const (
	writeDone     writeOutcome = iota // written: commit
	writeConflict                     // another writer moved the record: re-read past rev and apply again
	writeFailed                       // give up for now: nak the inputs
)

// afterWrite classifies err, the result of the attempt-th (from 0)
// compare-and-set of a group. Conflicts are retried up to maxCASRetries
// times.
func afterWrite(err error, attempt int) writeOutcome {
	switch {
	case err == nil:
		return writeDone
	case !kvcas.Conflict(err):
		return writeFailed
	case attempt >= maxCASRetries:
		return writeFailed
	}
	return writeConflict
}
