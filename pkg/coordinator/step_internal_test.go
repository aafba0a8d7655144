package coordinator

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

func res(run string) job  { return job{runID: run, res: &protocol.TaskResult{RunID: run}} }
func trig(run string) job { return job{runID: run, trig: &protocol.Trigger{}} }
func timer(run string, kind protocol.TimerKind) job {
	return job{runID: run, timer: &protocol.TimerFire{RunID: run, Kind: kind}}
}

func TestEachGroup(t *testing.T) {
	t.Parallel()
	purge := func(run string) job { return timer(run, protocol.TimerPurge) }
	// label names a job in the want strings: its run, then r (result), t
	// (trigger), p (purge timer), x (other timer) or c (cancel).
	label := func(j job) string {
		switch {
		case j.trig != nil:
			return j.runID + "t"
		case isPurge(j):
			return j.runID + "p"
		case j.timer != nil:
			return j.runID + "x"
		case j.cancel != nil:
			return j.runID + "c"
		}
		return j.runID + "r"
	}
	kinds := map[groupKind]string{groupApply: "apply", groupTrigger: "trigger", groupPurge: "purge"}
	for _, tc := range []struct {
		name     string
		batch    []job
		want     []string
		wantStop bool
	}{
		{"one result", []job{res("a")}, []string{"apply[ar]"}, false},
		{"one run's inputs are one group", []job{res("a"), timer("a", protocol.TimerJoin), res("a")},
			[]string{"apply[ar ax ar]"}, false},
		{"runs interleaved group per run, in first-seen order",
			[]job{res("a"), res("b"), res("a"), {runID: "b", cancel: &protocol.CancelRequest{}}},
			[]string{"apply[ar ar]", "apply[br bc]"}, false},
		{"a trigger is alone and splits its run's group",
			[]job{res("a"), trig("a"), res("a")},
			[]string{"apply[ar]", "trigger[at]", "apply[ar]"}, false},
		{"another run's trigger does not split a group",
			[]job{res("a"), trig("b"), res("a")},
			[]string{"apply[ar ar]", "trigger[bt]"}, false},
		{"a purge timer is alone and skipped by the group",
			[]job{res("a"), purge("a"), res("a")},
			[]string{"apply[ar ar]", "purge[ap]"}, false},
		{"stop ends the walk", []job{res("a"), {stop: true}, res("b")}, []string{"apply[ar]"}, true},
		{"stop first", []job{{stop: true}, res("a")}, nil, true},
		{"a group skips past a stop, which still ends the walk",
			[]job{res("a"), {stop: true}, res("a")}, []string{"apply[ar ar]"}, true},
		{"empty", nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			stop := eachGroup(tc.batch, make([]bool, len(tc.batch)), nil, func(k groupKind, g []job) {
				s := kinds[k] + "["
				for i, j := range g {
					if i > 0 {
						s += " "
					}
					s += label(j)
				}
				got = append(got, s+"]")
			})
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantStop, stop)
		})
	}
}

func TestMissing(t *testing.T) {
	t.Parallel()
	boom := errors.New("kv: timeout")
	notFound := fmt.Errorf("read: %w", jetstream.ErrKeyNotFound)
	for _, tc := range []struct {
		name       string
		j          job
		err        error
		want       missingAction
		wantSource string
		wantIs     error
	}{
		{"read failed: retried", res("r"), boom, missingNak, "", boom},
		{"deadline: retried", res("r"), context.DeadlineExceeded, missingNak, "", context.DeadlineExceeded},
		{"result for an unknown run: refused", res("r"), notFound, missingReject, "result", fsm.ErrWorkflow},
		{"cancel for an unknown run: refused", job{runID: "r", cancel: &protocol.CancelRequest{}}, notFound,
			missingReject, "control", fsm.ErrWorkflow},
		{"timer of a purged run: acknowledged", timer("r", protocol.TimerJoin), notFound, missingAck, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			act, source, err := missing(tc.j, tc.err)
			require.Equal(t, tc.want, act)
			require.Equal(t, tc.wantSource, source)
			if tc.wantIs == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.wantIs)
			if act == missingReject {
				require.ErrorContains(t, err, `unknown run "r"`)
			}
		})
	}
}

func TestAfterWrite(t *testing.T) {
	t.Parallel()
	conflict := fmt.Errorf("wrong last sequence: %w", jetstream.ErrKeyRevisionMismatch)
	for _, tc := range []struct {
		name    string
		err     error
		attempt int
		want    writeOutcome
	}{
		{"written", nil, 0, writeDone},
		{"written after conflicts", nil, maxCASRetries, writeDone},
		{"revision conflict is retried", conflict, 0, writeConflict},
		{"key exists is a conflict", jetstream.ErrKeyExists, 3, writeConflict},
		{"last conflict retried", conflict, maxCASRetries - 1, writeConflict},
		{"conflicts past the bound give up", conflict, maxCASRetries, writeFailed},
		{"timeout gives up", context.DeadlineExceeded, 0, writeFailed},
		{"other error gives up", errors.New("no responders"), 0, writeFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, afterWrite(tc.err, tc.attempt))
		})
	}
}

// chainMachine compiles the ten-state demo chain.
func chainMachine(t *testing.T) *engine.Machine {
	t.Helper()
	def, err := demo.Chain().Definition()
	require.NoError(t, err)
	m, err := engine.Compile(def)
	require.NoError(t, err)
	return m
}

// okResult is the result that moves run r, at step, to next.
func okResult(r *protocol.RunRecord, step uint32, next string) job {
	return job{runID: r.ID, res: &protocol.TaskResult{V: protocol.SchemaVersion, RunID: r.ID, Step: step, Branch: -1,
		Attempts: 1, Status: protocol.ResultOK, Next: next}}
}

func TestApplyInputs(t *testing.T) {
	t.Parallel()
	m := chainMachine(t)
	now := time.Unix(1000, 0)
	start, _, err := engine.Start(m, &protocol.Trigger{Workflow: demo.ChainName}, "run1", now)
	require.NoError(t, err)
	require.Equal(t, "s0", start.State)
	cancel := job{runID: "run1", cancel: &protocol.CancelRequest{RunID: "run1", Reason: "stop"}}
	later := now.Add(time.Second)

	for _, tc := range []struct {
		name                       string
		jobs                       []job
		applied, unchanged, failed int
		state                      string
		step                       uint32
		commands                   int
		ended                      bool
		planCached, planFresh      stepPlan
	}{
		{name: "one result moves the run", jobs: []job{okResult(start, 0, "s1")}, applied: 1,
			state: "s1", step: 1, commands: 1, planCached: planWrite, planFresh: planWrite},
		{name: "results of one run are applied together, effects merged",
			jobs:    []job{okResult(start, 0, "s1"), okResult(start, 1, "s2"), okResult(start, 2, "s3")},
			applied: 3, state: "s3", step: 3, commands: 3, planCached: planWrite, planFresh: planWrite},
		{name: "a duplicate on a cached record asks for a re-read",
			jobs:    []job{okResult(start, 0, "s1"), okResult(start, 0, "s1")},
			applied: 1, unchanged: 1, state: "s1", step: 1, commands: 1, planCached: planRefresh, planFresh: planWrite},
		{name: "only a late result: settle once fresh",
			jobs:      []job{okResult(start, 7, "s8")},
			unchanged: 1, state: "s0", step: 0, planCached: planRefresh, planFresh: planSettle},
		{name: "a cancel after a result ends the run in the same write",
			jobs:    []job{okResult(start, 0, "s1"), cancel},
			applied: 2, state: "s1", step: 1, commands: 1, ended: true, planCached: planWrite, planFresh: planWrite},
		{name: "inputs after the end change nothing",
			jobs:    []job{cancel, okResult(start, 0, "s1")},
			applied: 1, unchanged: 1, state: "s0", step: 0, ended: true, planCached: planRefresh, planFresh: planWrite},
		{name: "a branch result of another step is late",
			jobs:    []job{okResult(start, 0, "s1"), branchResult("run1", 1, 0)},
			applied: 1, unchanged: 1, state: "s1", step: 1, commands: 1, planCached: planRefresh, planFresh: planWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := applyInputs(m, start, nil, tc.jobs, later)
			require.Len(t, st.applied, tc.applied, "applied")
			require.Len(t, st.unchanged, tc.unchanged, "unchanged")
			require.Len(t, st.failed, tc.failed, "failed")
			require.Len(t, st.kept, tc.applied+tc.unchanged, "kept")
			require.Equal(t, tc.state, st.rec.State)
			require.Equal(t, tc.step, st.rec.Step)
			require.Len(t, st.fx.Commands, tc.commands)
			require.Equal(t, tc.ended, st.fx.Ended)
			require.Equal(t, tc.ended, st.rec.Status.Terminal())
			require.Equal(t, tc.applied > 0, st.fx.Changed)
			require.Equal(t, tc.planCached, st.plan(false), "plan on a cached record")
			require.Equal(t, tc.planFresh, st.plan(true), "plan on a fresh record")
			require.Equal(t, "s0", start.State, "the input record is never modified")
			if tc.applied > 0 {
				require.Equal(t, later.UnixNano(), st.rec.UpdatedAt)
			} else {
				require.Same(t, start, st.rec)
			}
			for _, f := range st.failed {
				require.Error(t, f.err)
			}
		})
	}
}

func TestMergeEffects(t *testing.T) {
	t.Parallel()
	var dst engine.Effects
	mergeEffects(&dst, &engine.Effects{Commands: []protocol.TaskCommand{{Step: 1}}, Events: []protocol.Event{{Step: 1}}})
	mergeEffects(&dst, &engine.Effects{Commands: []protocol.TaskCommand{{Step: 2}}, Timers: []protocol.TimerFire{{Step: 2}},
		Notices: []protocol.CancelNotice{{Step: 2}}, Ended: true})
	mergeEffects(&dst, &engine.Effects{Events: []protocol.Event{{Step: 3}}})
	require.True(t, dst.Changed)
	require.True(t, dst.Ended, "an end is kept")
	require.Equal(t, []uint32{1, 2}, []uint32{dst.Commands[0].Step, dst.Commands[1].Step})
	require.Len(t, dst.Timers, 1)
	require.Len(t, dst.Notices, 1)
	require.Equal(t, []uint32{1, 3}, []uint32{dst.Events[0].Step, dst.Events[1].Step})

	// Every list of effects is carried, those added since this test too:
	// each slice field of a source with one element each ends up in dst.
	var src engine.Effects
	sv := reflect.ValueOf(&src).Elem()
	for i := range sv.NumField() {
		if f := sv.Field(i); f.Kind() == reflect.Slice {
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		}
	}
	var all engine.Effects
	mergeEffects(&all, &src)
	av := reflect.ValueOf(all)
	for i := range av.NumField() {
		if f := av.Field(i); f.Kind() == reflect.Slice {
			require.Equal(t, 1, f.Len(), "mergeEffects drops Effects.%s", av.Type().Field(i).Name)
		}
	}
}

func branchResult(run string, step uint32, branch int32) job {
	return job{runID: run, res: &protocol.TaskResult{V: protocol.SchemaVersion, RunID: run, Step: step, Branch: branch,
		Attempts: 1, Status: protocol.ResultOK}}
}

// A dynamic split's spec is put once, and the branches after it in the
// same group are applied with it; without it, a branch result is refused
// and set apart while the inputs around it are applied.
func TestApplyInputsDynamicSplit(t *testing.T) {
	t.Parallel()
	m := chainMachine(t)
	now := time.Unix(1000, 0)
	start, _, err := engine.Start(m, &protocol.Trigger{Workflow: demo.ChainName}, "run1", now)
	require.NoError(t, err)
	split := okResult(start, 0, "")
	split.res.Split = &protocol.SplitSpec{Tasks: []protocol.TaskSpec{{Kind: "noop"}, {Kind: "noop"}},
		Join: protocol.JoinSpec{Strategy: protocol.JoinAll, JoinState: "s5"}}

	st := applyInputs(m, start, nil, []job{split, branchResult("run1", 1, 0)}, now)
	require.Len(t, st.applied, 2)
	require.Empty(t, st.failed)
	require.Len(t, st.specs, 1, "the spec is stored before the record")
	require.Equal(t, uint32(1), st.specs[0].step)
	require.Same(t, split.res.Split, st.dyn)
	require.True(t, st.rec.Split.Dynamic)
	require.Equal(t, uint32(1), st.rec.Split.Succeeded, "the branch was applied with the new spec")
	require.Len(t, st.fx.Commands, 2, "one command per branch")

	// The record in the cache without its spec (not loaded).
	mid := applyInputs(m, start, nil, []job{split}, now)
	st = applyInputs(m, mid.rec, nil, []job{branchResult("run1", 1, 0), {runID: "run1", cancel: &protocol.CancelRequest{RunID: "run1"}}}, now)
	require.Len(t, st.failed, 1)
	require.ErrorIs(t, st.failed[0].err, engine.ErrNeedSplitSpec)
	require.Len(t, st.applied, 1, "the cancel after it is applied")
	require.Len(t, st.kept, 1, "a refused input is not kept for a re-apply")
	require.True(t, st.rec.Status.Terminal())

	// With the spec loaded, both branches join.
	st = applyInputs(m, mid.rec, mid.dyn, []job{branchResult("run1", 1, 0), branchResult("run1", 1, 1)}, now)
	require.Len(t, st.applied, 2)
	require.Equal(t, "s5", st.rec.State)
	require.Empty(t, st.specs)
}

// BenchmarkEachGroup: grouping a batch of interleaved results of 16 runs.
func BenchmarkEachGroup(b *testing.B) {
	batch := make([]job, 256)
	for i := range batch {
		batch[i] = res(fmt.Sprintf("run%d", i%16))
	}
	done := make([]bool, len(batch))
	group := make([]job, 0, len(batch))
	b.ReportAllocs()
	for b.Loop() {
		clear(done)
		n := 0
		eachGroup(batch, done, group, func(_ groupKind, g []job) { n += len(g) })
		if n != len(batch) {
			b.Fatal(n)
		}
	}
}

// BenchmarkApplyInputs: three results of one run applied as one group.
func BenchmarkApplyInputs(b *testing.B) {
	def, err := demo.Chain().Definition()
	require.NoError(b, err)
	m, err := engine.Compile(def)
	require.NoError(b, err)
	now := time.Unix(1000, 0)
	start, _, err := engine.Start(m, &protocol.Trigger{Workflow: demo.ChainName}, "run1", now)
	require.NoError(b, err)
	jobs := []job{okResult(start, 0, "s1"), okResult(start, 1, "s2"), okResult(start, 2, "s3")}
	b.ReportAllocs()
	for b.Loop() {
		if st := applyInputs(m, start, nil, jobs, now); len(st.applied) != 3 {
			b.Fatal(len(st.applied))
		}
	}
}
