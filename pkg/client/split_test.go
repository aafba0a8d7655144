package client_test

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// J is the state type of the split/join workflows.
type J string

const (
	JSplit, JJoin, JDone, JFan, JConcat J = "split", "join", "done", "fan", "concat"
)

// probe is what one run's tasks and the workers' hooks record, in order.
// Runs started without a probe (benchmarks) record nothing.
type probe struct {
	mu     sync.Mutex
	log    []string         // guarded by mu
	events []protocol.Event // guarded by mu
	// byWorker counts attempts started per worker id; guarded by mu.
	byWorker map[string]int

	running, maxRunning atomic.Int32 // measured by the branch tasks
	hooked, maxHooked   atomic.Int32 // measured by the workers' hooks
}

var probes sync.Map // run id → *probe

func probeFor(runID string) *probe {
	v, _ := probes.Load(runID)
	p, _ := v.(*probe)
	return p
}

func (p *probe) add(entry string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, entry)
}

func (p *probe) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

func (p *probe) eventsOf(typ protocol.EventType) []protocol.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []protocol.Event
	for _, ev := range p.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func raiseMax(maxv *atomic.Int32, n int32) {
	for {
		m := maxv.Load()
		if n <= m || maxv.CompareAndSwap(m, n) {
			return
		}
	}
}

func (p *probe) enter() {
	if p != nil {
		raiseMax(&p.maxRunning, p.running.Add(1))
	}
}

func (p *probe) leave() {
	if p != nil {
		p.running.Add(-1)
	}
}

// branch simulates D of work, then succeeds with output Out or fails. It
// records "done i", "failed i" or "cancelled i" in its run's probe.
type branch struct {
	D    time.Duration `msgpack:"d"`
	Out  int           `msgpack:"out"`
	Fail bool          `msgpack:"fail"`
}

func (branch) Kind() string           { return "sj_branch" }
func (branch) Config() fsm.TaskConfig { return fsm.Minimal() }
func (br branch) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	p := probeFor(tc.RunID)
	p.enter()
	defer p.leave()
	t := time.NewTimer(br.D)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		p.add(fmt.Sprintf("cancelled %d", tc.Branch))
		return fsm.Result{}, ctx.Err()
	}
	if br.Fail {
		p.add(fmt.Sprintf("failed %d", tc.Branch))
		return fsm.Result{}, fsm.Permanent(fmt.Errorf("branch %d failed", tc.Branch))
	}
	p.add(fmt.Sprintf("done %d", tc.Branch))
	return fsm.NextWith(JJoin, br.Out), nil
}

// gather is a join state: it records "join" and completes with every
// branch's outcome read through TaskContext.Branches and fsm.BranchOutput.
type gather struct{}

func (gather) Kind() string { return "sj_gather" }
func (gather) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	probeFor(tc.RunID).add("join")
	bs, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		if b.Status != protocol.BranchSucceeded {
			out[i] = fmt.Sprintf("%d:%s", b.Index, b.Status)
			continue
		}
		v, err := fsm.BranchOutput[int](b)
		if err != nil {
			return fsm.Result{}, err
		}
		out[i] = fmt.Sprintf("%d:%d", b.Index, v)
	}
	return fsm.NextWith(JDone, out), nil
}

// fanWords splits over the run's input, a list decided at run time.
type fanWords struct{}

func (fanWords) Kind() string { return "sj_fan_words" }
func (fanWords) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var words []string
	if err := tc.Input(&words); err != nil {
		return fsm.Result{}, err
	}
	tasks := make([]fsm.Task, len(words))
	for i, w := range words {
		tasks[i] = shout{Word: w}
	}
	return fsm.SplitInto(fsm.JoinConfig[J]{Strategy: join.All(), JoinState: JConcat}, tasks...), nil
}

type shout struct {
	Word string `msgpack:"word"`
}

func (shout) Kind() string { return "sj_shout" }
func (s shout) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(JConcat, strings.ToUpper(s.Word)), nil
}

// concat joins the dynamic split's string outputs in branch order.
type concat struct{}

func (concat) Kind() string { return "sj_concat" }
func (concat) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	bs, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	parts := make([]string, len(bs))
	for i, b := range bs {
		if parts[i], err = fsm.BranchOutput[string](b); err != nil {
			return fsm.Result{}, err
		}
	}
	return fsm.NextWith(JDone, strings.Join(parts, ",")), nil
}

// fromOutputs aggregates the seed example through branch outputs only.
type fromOutputs struct{}

func (fromOutputs) Kind() string { return "sj_from_outputs" }
func (fromOutputs) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	bs, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	parts := make([]string, 0, len(bs))
	for _, b := range bs {
		v, err := fsm.BranchOutput[string](b)
		if err != nil {
			return fsm.Result{}, err
		}
		parts = append(parts, v)
	}
	return fsm.NextWith(demo.Complete, strings.Join(parts, ",")), nil
}

// timedSplit is the join_strategies shape: branches taking ds, joined by s
// into gather.
func timedSplit(name string, s join.Strategy, timeout time.Duration, bs ...branch) *fsm.Workflow[J] {
	tasks := make([]fsm.Task, len(bs))
	for i := range bs {
		tasks[i] = bs[i]
	}
	return fsm.New[J](name, JSplit).
		RegisterSplit(JSplit, tasks, fsm.JoinConfig[J]{Strategy: s, JoinState: JJoin, Timeout: timeout}).
		Register(JJoin, gather{}).Exit(JDone)
}

func ms(d ...int) []branch {
	out := make([]branch, len(d))
	for i, v := range d {
		out[i] = branch{D: time.Duration(v) * time.Millisecond, Out: v}
	}
	return out
}

// nop is a no-op branch with one attempt: its spec is small (about 50
// bytes), so a 10,000-branch definition stays under the 1 MiB payload
// limit the coordinator decodes definitions with (a default retry policy
// makes each spec about 140 bytes and such a definition is refused).
type nop struct{}

func (nop) Kind() string                                              { return "sj_nop" }
func (nop) Config() fsm.TaskConfig                                    { return fsm.Minimal() }
func (nop) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) { return fsm.Next(JDone), nil }

// noopSplit is n no-op branches joined with All straight into the exit.
func noopSplit(n int) *fsm.Workflow[J] {
	tasks := make([]fsm.Task, n)
	for i := range tasks {
		tasks[i] = nop{}
	}
	return fsm.New[J](noopSplitName(n), JSplit).
		RegisterSplit(JSplit, tasks, fsm.JoinConfig[J]{Strategy: join.All(), JoinState: JDone}).Exit(JDone)
}

func noopSplitName(n int) string { return fmt.Sprintf("sj_noop_%d", n) }

func strategyCases() []struct {
	name      string
	strategy  join.Strategy
	threshold int // index of the branch whose success meets the threshold
} {
	return []struct {
		name      string
		strategy  join.Strategy
		threshold int
	}{
		{"sj_any", join.Any(), 0},
		{"sj_partial_results_2", join.PartialResults(2), 1},
		{"sj_quorum_2", join.Quorum(2), 1},
		{"sj_percentage_50", join.Percentage(0.5), 1},
	}
}

func splitWorkflows() []worker.Definer {
	fail := func(d int) branch { return branch{D: time.Duration(d) * time.Millisecond, Fail: true} }
	slow := branch{D: 5 * time.Second}
	sources := []fsm.Task{
		demo.FetchSource{SourceID: 1, Delay: 20 * time.Millisecond},
		demo.FetchSource{SourceID: 2, Delay: 10 * time.Millisecond},
		demo.FetchSource{SourceID: 3, Delay: 30 * time.Millisecond},
	}
	bulk := make([]fsm.Task, 8)
	for i := range bulk {
		bulk[i] = branch{D: 100 * time.Millisecond, Out: i}
	}
	wfs := []worker.Definer{
		demo.Workflow(),
		fsm.New[demo.FlowState]("sj_fetch_outputs", demo.Start).
			RegisterSplit(demo.Start, sources, fsm.JoinConfig[demo.FlowState]{Strategy: join.All(), JoinState: demo.Aggregate, Timeout: 5 * time.Second}).
			Register(demo.Aggregate, fromOutputs{}).Exit(demo.Complete),
		timedSplit("sj_all_fail", join.All(), 0, fail(50), slow, slow, slow),
		timedSplit("sj_quorum_errors", join.Quorum(2), 0, fail(10), fail(20), fail(30), fail(40), fail(50), slow),
		timedSplit("sj_partial_timeout", join.PartialTimeout(), 1500*time.Millisecond, ms(50, 100, 10_000, 10_000)...),
		timedSplit("sj_all_timeout", join.All(), 1500*time.Millisecond, ms(50, 10_000)...),
		fsm.New[J]("sj_bulkhead", JSplit).
			RegisterSplit(JSplit, bulk, fsm.JoinConfig[J]{Strategy: join.All(), JoinState: JJoin, Bulkhead: 2}).
			Register(JJoin, gather{}).Exit(JDone),
		fsm.New[J]("sj_dynamic", JFan).Register(JFan, fanWords{}).Register(JConcat, concat{}).Exit(JDone),
	}
	for _, tc := range strategyCases() {
		wfs = append(wfs, timedSplit(tc.name, tc.strategy, 0, ms(50, 150, 300, 500)...))
	}
	return wfs
}

type splitBundle struct {
	srv    *natstest.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	client *client.Client
	names  protocol.Names
}

// setupSplit starts one coordinator and two workers, each on its own
// connection, and a client on a fourth. The workers register the split
// workflows and extra.
func setupSplit(tb testing.TB, extra ...worker.Definer) *splitBundle {
	tb.Helper()
	srv := natstest.StartProvisioned(tb, provision.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	fsm.Register[branch](reg)
	fsm.Register[gather](reg)
	fsm.Register[fanWords](reg)
	fsm.Register[shout](reg)
	fsm.Register[concat](reg)
	fsm.Register[fromOutputs](reg)
	fsm.Register[nop](reg)
	wfs := append(splitWorkflows(), extra...)
	for i := range 2 {
		id := fmt.Sprintf("worker-%d", i+1)
		wnc, _ := srv.Connect(tb)
		w, err := worker.New(wnc, worker.Config{ID: id, Registry: reg, Workflows: wfs, AckWait: 5 * time.Second,
			Hooks: worker.Hooks{
				AttemptStarted: func(cmd *protocol.TaskCommand, _ int) {
					if p := probeFor(cmd.RunID); p != nil && cmd.Branch >= 0 {
						raiseMax(&p.maxHooked, p.hooked.Add(1))
						p.mu.Lock()
						if p.byWorker == nil {
							p.byWorker = map[string]int{}
						}
						p.byWorker[id]++
						p.mu.Unlock()
					}
				},
				AttemptEnded: func(cmd *protocol.TaskCommand, _ int, _ error) {
					if p := probeFor(cmd.RunID); p != nil && cmd.Branch >= 0 {
						p.hooked.Add(-1)
					}
				},
			}})
		require.NoError(tb, err)
		require.NoError(tb, w.Start(ctx))
		tb.Cleanup(func() { _ = w.Stop(context.Background()) })
	}
	cnc, _ := srv.Connect(tb)
	co, err := coordinator.New(cnc, coordinator.Config{Shards: 8})
	require.NoError(tb, err)
	require.NoError(tb, co.Start(ctx))
	tb.Cleanup(func() { _ = co.Stop(context.Background()) })
	nc, js := srv.Connect(tb)
	cl, err := client.New(nc, client.Config{})
	require.NoError(tb, err)
	return &splitBundle{srv: srv, nc: nc, js: js, client: cl, names: protocol.MustNames("")}
}

// watchedRun is a run started with a probe and a subscription to its events.
type watchedRun struct {
	id    string
	p     *probe
	ended chan protocol.Event
}

// start subscribes to the run's events (cano.event.*.<run>.>), then triggers
// it. Coordinator events land in the probe's log as "ev:<type>[:<state>]",
// in publish order (one coordinator, one connection).
func (b *splitBundle) start(t *testing.T, workflow string, input any) *watchedRun {
	t.Helper()
	r := &watchedRun{id: "r" + nuid.Next(), p: &probe{}, ended: make(chan protocol.Event, 1)}
	probes.Store(r.id, r.p)
	t.Cleanup(func() { probes.Delete(r.id) })
	sub, err := b.nc.Subscribe(b.names.RunEventsWildcard(r.id), func(m *nats.Msg) {
		var ev protocol.Event
		if wirecodec.Decode(m.Data, &ev, 0) != nil || ev.Type == protocol.EventTaskRetried {
			return
		}
		entry := "ev:" + string(ev.Type)
		if ev.Type == protocol.EventState {
			entry += ":" + ev.State
		}
		r.p.mu.Lock()
		r.p.events = append(r.p.events, ev)
		r.p.log = append(r.p.log, entry)
		r.p.mu.Unlock()
		if ev.Type.Terminal() {
			r.ended <- ev
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, b.nc.Flush())
	_, err = b.client.Trigger(awaitCtx(t), workflow, &client.TriggerOpts{RunID: r.id, Input: input})
	require.NoError(t, err)
	return r
}

// await waits for the run's outcome and for its terminal event.
func (b *splitBundle) await(t *testing.T, r *watchedRun) (*client.Run, error) {
	t.Helper()
	out, err := b.client.Await(awaitCtx(t), r.id)
	natstest.Recv(t, r.ended, 30*time.Second)
	return out, err
}

// eventTypes is the probe log's coordinator events, in order. Entering an
// exit state is announced by the terminal event; a "state" event for the
// exit itself (older coordinators sent one) is left out.
func eventTypes(log []string) []string {
	var out []string
	for _, e := range log {
		switch e {
		case "ev:state:" + string(JDone), "ev:state:" + string(demo.Complete):
			continue
		}
		if strings.HasPrefix(e, "ev:") {
			out = append(out, strings.TrimPrefix(e, "ev:"))
		}
	}
	return out
}

func indexOf(log []string, entry string) int { return slices.Index(log, entry) }

func TestSplitSeedExample(t *testing.T) {
	t.Parallel()
	b := setupSplit(t)

	t.Run("aggregation through the store", func(t *testing.T) {
		r := b.start(t, demo.WorkflowName, nil)
		out, err := b.await(t, r)
		require.NoError(t, err)
		require.Equal(t, []string{"start", "aggregate", "complete"}, out.Path)
		var joined string
		require.NoError(t, out.Output(&joined))
		require.Equal(t, "data_from_1,data_from_2,data_from_3", joined)
		// The branches wrote their data into the run's scope of the store.
		kv, err := natskv.New(awaitCtx(t), b.js, natskv.Config{Bucket: layout.StoreBucket(b.names)})
		require.NoError(t, err)
		scoped := kvstore.Scoped(kv, kvstore.RunScope(r.id))
		for i := 1; i <= 3; i++ {
			v, err := kvstore.GetAs[string](awaitCtx(t), scoped, fmt.Sprintf("source_%d", i))
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("data_from_%d", i), v)
		}
		require.Equal(t, []string{"started", "split", "join", "state:aggregate", "completed"}, eventTypes(r.p.snapshot()))
	})

	t.Run("aggregation through branch outputs, in branch order", func(t *testing.T) {
		r := b.start(t, "sj_fetch_outputs", nil)
		out, err := b.await(t, r)
		require.NoError(t, err)
		var joined string
		require.NoError(t, out.Output(&joined))
		// Branch 2 finishes first and branch 3 last; outputs come in branch order.
		require.Equal(t, "data_from_1,data_from_2,data_from_3", joined)
	})
}

// TestSplitJoinStrategies is cano's join_strategies scenario: four branches
// taking 50/150/300/500 ms. Each strategy enters its join state right after
// the branch that meets its threshold; the later branches are cancelled and
// never complete. Not parallel: the scenario's margins are 100-150 ms and
// the test runs before the parallel ones so that load does not eat them.
func TestSplitJoinStrategies(t *testing.T) {
	b := setupSplit(t)
	for _, tc := range strategyCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := b.start(t, tc.name, nil)
			out, err := b.await(t, r)
			require.NoError(t, err)
			log := r.p.snapshot()
			t.Logf("%s: %v", tc.strategy, log)

			// Events, in order: the split, its join decision, the join state.
			require.Equal(t, []string{"started", "split", "join", "state:join", "completed"}, eventTypes(log))
			joins := r.p.eventsOf(protocol.EventJoin)
			require.Len(t, joins, 1)
			require.Equal(t, fmt.Sprintf("%s: satisfied, %d/4 succeeded, 0 failed", tc.strategy, tc.threshold+1), joins[0].Detail)

			// The branches up to the threshold completed before the join
			// decided and before the join state ran; no later branch
			// completed at all. (Task records and received events are
			// ordered only where one causes the other.)
			for i := 0; i <= tc.threshold; i++ {
				done := indexOf(log, fmt.Sprintf("done %d", i))
				require.NotEqual(t, -1, done, "branch %d", i)
				require.Less(t, done, indexOf(log, "ev:join"), "branch %d completes before the join decision", i)
				require.Less(t, done, indexOf(log, "join"), "branch %d completes before the join state runs", i)
			}
			for i := tc.threshold + 1; i < 4; i++ {
				require.Equal(t, -1, indexOf(log, fmt.Sprintf("done %d", i)), "branch %d completed after the threshold", i)
			}

			// The join state read every outcome; the losers are cancelled.
			var got []string
			require.NoError(t, out.Output(&got))
			want := []string{"0:50", "1:150", "2:cancelled", "3:cancelled"}
			if tc.threshold == 0 {
				want[1] = "1:cancelled"
			}
			require.Equal(t, want, got)

			// The running losers had their contexts cancelled.
			natstest.WaitFor(t, 10*time.Second, "losers cancelled", func() bool {
				l := r.p.snapshot()
				for i := tc.threshold + 1; i < 4; i++ {
					if indexOf(l, fmt.Sprintf("cancelled %d", i)) < 0 {
						return false
					}
				}
				return true
			})
		})
	}
}

func TestSplitFailures(t *testing.T) {
	t.Parallel()
	b := setupSplit(t)

	t.Run("All fails at the first failed branch and cancels the rest", func(t *testing.T) {
		r := b.start(t, "sj_all_fail", nil)
		out, err := b.await(t, r)
		require.ErrorIs(t, err, fsm.ErrWorkflow)
		require.Equal(t, client.RunFailed, out.Status)
		require.Contains(t, err.Error(), "join condition not met: 0 of 4 tasks completed successfully, strategy: all; errors: task 0: branch 0 failed")
		log := r.p.snapshot()
		require.Equal(t, []string{"started", "split", "join", "failed"}, eventTypes(log))
		require.Less(t, indexOf(log, "failed 0"), indexOf(log, "ev:join"))
		for i := 1; i < 4; i++ {
			require.Equal(t, -1, indexOf(log, fmt.Sprintf("done %d", i)), "branch %d finished before the run failed", i)
		}
		require.Equal(t, "all: failed, 0/4 succeeded, 1 failed", r.p.eventsOf(protocol.EventJoin)[0].Detail)
		natstest.WaitFor(t, 10*time.Second, "the slow branches cancelled", func() bool {
			l := r.p.snapshot()
			return indexOf(l, "cancelled 1") >= 0 && indexOf(l, "cancelled 2") >= 0 && indexOf(l, "cancelled 3") >= 0
		})
	})

	t.Run("failure message lists strategy, counts and the first three errors", func(t *testing.T) {
		// Quorum(2) of 6 with five failing: impossible at the fifth failure.
		r := b.start(t, "sj_quorum_errors", nil)
		_, err := b.await(t, r)
		require.ErrorIs(t, err, fsm.ErrWorkflow)
		re := regexp.MustCompile(`join condition not met: 0 of 6 tasks completed successfully, strategy: quorum\(2\); ` +
			`errors: task ([0-4]): branch ([0-4]) failed; task ([0-4]): branch [0-4] failed; task ([0-4]): branch [0-4] failed; … and 2 more error\(s\)`)
		require.Regexp(t, re, err.Error())
		m := re.FindStringSubmatch(err.Error())
		require.Equal(t, m[1], m[2])
		require.Len(t, map[string]bool{m[1]: true, m[3]: true, m[4]: true}, 3, "three distinct branches")
		require.Equal(t, "quorum(2): failed, 0/6 succeeded, 5 failed", r.p.eventsOf(protocol.EventJoin)[0].Detail)
		require.Equal(t, -1, indexOf(r.p.snapshot(), "done 5"))
	})

	t.Run("PartialTimeout proceeds at the deadline with what completed", func(t *testing.T) {
		r := b.start(t, "sj_partial_timeout", nil)
		out, err := b.await(t, r)
		require.NoError(t, err)
		var got []string
		require.NoError(t, out.Output(&got))
		require.Equal(t, "0:50", got[0])
		require.Equal(t, "1:100", got[1])
		require.NotContains(t, got[2], "succeeded")
		require.NotContains(t, got[3], "succeeded")
		log := r.p.snapshot()
		require.Equal(t, []string{"started", "split", "join", "state:join", "completed"}, eventTypes(log))
		require.Equal(t, "partial_timeout: satisfied, 2/4 succeeded, 0 failed", r.p.eventsOf(protocol.EventJoin)[0].Detail)
		require.Less(t, indexOf(log, "done 1"), indexOf(log, "ev:join"))
	})

	t.Run("All with a join timeout fails with split task timeout exceeded", func(t *testing.T) {
		r := b.start(t, "sj_all_timeout", nil)
		out, err := b.await(t, r)
		require.ErrorIs(t, err, fsm.ErrWorkflow)
		require.Equal(t, client.RunFailed, out.Status)
		require.Contains(t, err.Error(), "split task timeout exceeded: 1 of 2 tasks completed successfully, strategy: all")
		log := r.p.snapshot()
		require.Less(t, indexOf(log, "done 0"), indexOf(log, "ev:join"))
		require.Equal(t, -1, indexOf(log, "done 1"))
		natstest.WaitFor(t, 10*time.Second, "the slow branch cancelled", func() bool {
			return indexOf(r.p.snapshot(), "cancelled 1") >= 0
		})
	})
}

func TestSplitBulkheadAcrossTwoWorkers(t *testing.T) {
	t.Parallel()
	b := setupSplit(t)
	r := b.start(t, "sj_bulkhead", nil)
	out, err := b.await(t, r)
	require.NoError(t, err)
	var got []string
	require.NoError(t, out.Output(&got))
	require.Equal(t, []string{"0:0", "1:1", "2:2", "3:3", "4:4", "5:5", "6:6", "7:7"}, got)
	r.p.mu.Lock()
	byWorker := maps.Clone(r.p.byWorker)
	r.p.mu.Unlock()
	t.Logf("branches per worker: %v; most in flight: %d (workers' hooks), %d (tasks)", byWorker, r.p.maxHooked.Load(), r.p.maxRunning.Load())
	total := 0
	for _, n := range byWorker {
		total += n
	}
	require.Equal(t, 8, total, "each branch attempted once")
	require.Equal(t, int32(2), r.p.maxHooked.Load(), "the workers never ran more than 2 branches at once")
	require.Equal(t, int32(2), r.p.maxRunning.Load())
	require.Equal(t, "all: satisfied, 8/8 succeeded, 0 failed", r.p.eventsOf(protocol.EventJoin)[0].Detail)
}

func TestSplitDynamicOverRuntimeList(t *testing.T) {
	t.Parallel()
	b := setupSplit(t)
	words := []string{"ada", "grace", "edsger", "barbara", "ken", "rob", "niklaus"}
	r := b.start(t, "sj_dynamic", words)
	out, err := b.await(t, r)
	require.NoError(t, err)
	var joined string
	require.NoError(t, out.Output(&joined))
	require.Equal(t, "ADA,GRACE,EDSGER,BARBARA,KEN,ROB,NIKLAUS", joined)
	require.Equal(t, []string{"fan", "concat", "done"}, out.Path)
	require.Equal(t, []string{"started", "split", "join", "state:concat", "completed"}, eventTypes(r.p.snapshot()))
	require.Equal(t, "all: satisfied, 7/7 succeeded, 0 failed", r.p.eventsOf(protocol.EventJoin)[0].Detail)
}

// The two 10,000-branch tests run alone (not in parallel) and with a
// generous deadline: under -race on two cores they take seconds each, and
// they assert completion and counts, not time.
func TestSplitTenThousandBranches(t *testing.T) {
	const n = 10_000
	b := setupSplit(t, noopSplit(n))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kv, err := b.js.KeyValue(ctx, layout.RunsBucket(b.names))
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	bucketMax := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.MaxMsgSize
	require.Positive(t, bucketMax)

	id := "r" + nuid.Next()
	watch, err := kv.Watch(ctx, layout.RunKey(id), jetstream.UpdatesOnly())
	require.NoError(t, err)
	defer func() { _ = watch.Stop() }()
	var largest, writes atomic.Int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for e := range watch.Updates() {
			if e == nil {
				continue
			}
			writes.Add(1)
			raiseMax64(&largest, int64(len(e.Value())))
			var rec protocol.RunRecord
			if wirecodec.Decode(e.Value(), &rec, 0) == nil && rec.Status.Terminal() {
				return
			}
		}
	}()
	joined := make(chan protocol.Event, 1)
	sub, err := b.nc.Subscribe(b.names.EventSubject(noopSplitName(n), id, protocol.EventJoin), func(m *nats.Msg) {
		var ev protocol.Event
		if wirecodec.Decode(m.Data, &ev, 0) == nil {
			joined <- ev
		}
	})
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, b.nc.Flush())

	start := time.Now()
	_, err = b.client.Trigger(ctx, noopSplitName(n), &client.TriggerOpts{RunID: id})
	require.NoError(t, err)
	out, err := b.client.Await(ctx, id)
	require.NoError(t, err)
	elapsed := time.Since(start)
	require.Equal(t, []string{"split", "done"}, out.Path)
	ev := natstest.Recv(t, joined, time.Minute)
	require.Equal(t, "all: satisfied, 10000/10000 succeeded, 0 failed", ev.Detail)
	natstest.Recv(t, watched, time.Minute)
	t.Logf("%d branches in %s; run record: %d writes seen, largest %d bytes (bucket max %d)",
		n, elapsed.Round(time.Millisecond), writes.Load(), largest.Load(), bucketMax)
	require.Less(t, largest.Load(), int64(4<<10), "the run record stays small")
	require.Less(t, largest.Load(), int64(bucketMax)/100)
}

func raiseMax64(maxv *atomic.Int64, n int64) {
	for {
		m := maxv.Load()
		if n <= m || maxv.CompareAndSwap(m, n) {
			return
		}
	}
}

// TestSplitDynamicTenThousand: a split decided at run time over 10,000
// items of the run's input completes, every branch's output handed to the
// join state in branch order. It fails without the compact spec (the full
// one is a 1.45 MB result, over the 1 MiB payload). It also exercises the
// 70 KB input read lazily from the run record (asserted by the fsm test
// TestLargeInputStaysInRecord) and the join's single watch over 10,000
// outcomes; those make it fast, not pass.
func TestSplitDynamicTenThousand(t *testing.T) {
	b := setupSplit(t)
	const n = 10_000
	words := make([]string, n)
	for i := range words {
		words[i] = fmt.Sprintf("w%05d", i)
	}
	r := b.start(t, "sj_dynamic", words)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := b.client.Await(ctx, r.id)
	require.NoError(t, err)
	var joined string
	require.NoError(t, out.Output(&joined))
	parts := strings.Split(joined, ",")
	require.Len(t, parts, n)
	for i, p := range parts {
		require.Equal(t, fmt.Sprintf("W%05d", i), p)
	}
	require.Equal(t, []string{"fan", "concat", "done"}, out.Path)
}
