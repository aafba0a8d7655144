package fault

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/proctest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// This file holds what the broker crash and pause tests share: a load of
// runs with known ids, a trigger that retries through an outage, a fault
// fired right after a record write, and an await that, when runs are stuck,
// says where each one is and what the streams still hold for it.

// runWant is what a run must end with: completed, with exactly this path
// (each state entered once), and when output is set, exactly this output.
type runWant struct {
	workflow string
	path     []string
	output   string
}

var pfWant = runWant{workflow: demo.WorkflowName, path: []string{"start", "aggregate", "complete"},
	output: "data_from_1,data_from_2,data_from_3"}

func chainWant() runWant { return runWant{workflow: demo.ChainName, path: chainPath()} }

// load is a set of runs the test triggers and then awaits.
type load struct {
	mu    sync.Mutex
	wants map[string]runWant // guarded by mu; run id → expected end
}

func newLoad() *load { return &load{wants: map[string]runWant{}} }

// add names n new runs of want (ids tag-0000, tag-0001, …) and returns them.
func (l *load) add(tag string, n int, want runWant) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%04d", tag, i)
		l.wants[ids[i]] = want
	}
	return ids
}

func (l *load) snapshot() map[string]runWant {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.wants)
}

// triggerRetrying triggers every run of ids (workflow, run id chosen by the
// test) and retries each until the broker stores it or ctx ends: a trigger
// carries its run id as its de-duplication id, so a retry of one the broker
// did store before it died starts nothing twice. It returns how many
// publishes were retried.
func triggerRetrying(ctx context.Context, cl *client.Client, workflow string, ids []string) (int, error) {
	var retries atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(ids); i += 8 {
				for {
					actx, cancel := context.WithTimeout(ctx, 5*time.Second)
					_, err := cl.Trigger(actx, workflow, &client.TriggerOpts{RunID: ids[i], NoWait: true})
					cancel()
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						errs <- fmt.Errorf("trigger %s: %w (last error)", ids[i], err)
						return
					}
					retries.Add(1)
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return int(retries.Load()), <-errs
}

// recordWrites counts state events (published right after the record write
// that entered the state) as a core subscriber sees them, so a fault can be
// fired within a millisecond of a record write.
type recordWrites struct {
	n    atomic.Int64
	last atomic.Int64 // unix ns of the latest
	tick chan struct{}
}

func watchRecordWrites(t *testing.T, nc *nats.Conn) *recordWrites {
	t.Helper()
	w := &recordWrites{tick: make(chan struct{}, 1)}
	sub, err := nc.Subscribe("cano.event.*.*."+string(protocol.EventState), func(*nats.Msg) {
		w.last.Store(time.Now().UnixNano())
		w.n.Add(1)
		select {
		case w.tick <- struct{}{}:
		default:
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return w
}

// faultAfter waits until n more record writes have been seen, then at once
// runs fault, and returns how long after the latest write it fired.
func (w *recordWrites) faultAfter(t *testing.T, n int64, timeout time.Duration, fault func()) time.Duration {
	t.Helper()
	target := w.n.Load() + n
	deadline := time.After(timeout)
	for w.n.Load() < target {
		select {
		case <-w.tick:
		case <-deadline:
			t.Fatalf("only %d of %d record writes within %s: the load is not flowing", n-(target-w.n.Load()), n, timeout)
		}
	}
	fault()
	return time.Duration(time.Now().UnixNano() - w.last.Load())
}

// awaitRuns polls every run's record until each has ended or timeout
// passes, then checks each completed with exactly the path (and output) it
// must have. Runs still unfinished are listed with their status, state,
// step, when their record was last written relative to the faults (the
// times in faults), and what the streams still hold for them.
func awaitRuns(t *testing.T, cl *client.Client, js jetstream.JetStream, wants map[string]runWant, timeout time.Duration, faults ...time.Time) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	open := make([]string, 0, len(wants))
	for id := range wants {
		open = append(open, id)
	}
	sort.Strings(open)
	ended := map[string]*client.Run{}
	for len(open) > 0 && time.Now().Before(deadline) {
		var still []string
		for _, id := range open {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rec, err := cl.Get(ctx, id)
			cancel()
			if err == nil && rec.Status.Terminal() {
				ended[id] = rec
				continue
			}
			still = append(still, id)
		}
		open = still
		if len(open) > 0 {
			time.Sleep(200 * time.Millisecond) // poll interval, bounded by deadline
		}
	}
	var wrong []string
	for id, rec := range ended {
		w := wants[id]
		switch {
		case rec.Status != client.RunCompleted:
			wrong = append(wrong, fmt.Sprintf("run %s (%s) ended %s at %s step %d: %v; path %v", id, w.workflow, rec.Status, rec.State, rec.Step, rec.Err, rec.Path))
		case !slices.Equal(rec.Path, w.path):
			wrong = append(wrong, fmt.Sprintf("run %s (%s) path %v, want %v (each state exactly once)", id, w.workflow, rec.Path, w.path))
		case w.output != "":
			var got string
			if err := rec.Output(&got); err != nil || got != w.output {
				wrong = append(wrong, fmt.Sprintf("run %s (%s) output %q (%v), want %q", id, w.workflow, got, err, w.output))
			}
		}
	}
	sort.Strings(wrong)
	if len(open) > 0 {
		t.Errorf("%d of %d runs did not end within %s:\n%s", len(open), len(wants), timeout, diagnoseStuck(cl, js, open, wants, faults))
	}
	if len(wrong) > 0 {
		t.Errorf("%d of %d ended runs did not complete exactly once with their exact path:\n%s", len(wrong), len(ended), head(wrong, 40))
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("all %d runs completed, each with its exact path, %s after the await began", len(wants), time.Since(start).Round(time.Millisecond))
}

func head(lines []string, n int) string {
	if len(lines) > n {
		lines = append(lines[:n:n], fmt.Sprintf("… and %d more", len(lines)-n))
	}
	return "  " + strings.Join(lines, "\n  ")
}

// diagnoseStuck says, for each unfinished run, where its record is and how
// many messages for it each work stream still holds: a running record with
// nothing in any stream is a run nothing will ever move again.
func diagnoseStuck(cl *client.Client, js jetstream.JetStream, ids []string, wants map[string]runWant, faults []time.Time) string {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := protocol.MustNames("")
	streams := []string{layout.TriggersStream(n), layout.TasksStream(n), layout.ResultsStream(n), layout.TimersStream(n), layout.ControlStream(n)}
	held := map[string]map[string]int{} // run → stream → messages
	var notes []string
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			notes = append(notes, fmt.Sprintf("stream %s: %v", name, err))
			continue
		}
		st := s.CachedInfo().State
		notes = append(notes, fmt.Sprintf("stream %s: %d messages (seq %d–%d)", name, st.Msgs, st.FirstSeq, st.LastSeq))
		for ci := range s.ListConsumers(ctx).Info() {
			notes = append(notes, fmt.Sprintf("  consumer %s: pending %d, ack pending %d, redelivered %d, waiting pulls %d, last delivered stream seq %d",
				ci.Name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.Delivered.Stream))
		}
		scanned := 0
		for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0 && scanned < 20000; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			scanned++
			for _, id := range ids {
				if strings.Contains(m.Subject, id) || bytes.Contains(m.Data, []byte(id)) {
					if held[id] == nil {
						held[id] = map[string]int{}
					}
					held[id][name]++
				}
			}
		}
	}
	groups := map[string]int{}
	var lines []string
	for _, id := range ids {
		// The raw record, for the split's counts the client type leaves out.
		rec, err := rawRecord(ctx, js, id)
		var where string
		switch {
		case err != nil:
			where = fmt.Sprintf("no record (%v)", err)
		default:
			where = fmt.Sprintf("%s at %s step %d", rec.Status, rec.State, rec.Step)
			if rec.Split != nil {
				where += fmt.Sprintf(" split %d/%d dispatched, %d ok, %d failed", rec.Split.Dispatched, rec.Split.Total, rec.Split.Succeeded, rec.Split.Failed)
			}
		}
		owed := "nothing for it in any stream"
		if h := held[id]; len(h) > 0 {
			owed = fmt.Sprintf("streams hold %v", h)
		}
		groups[fmt.Sprintf("%s %s; %s", wants[id].workflow, where, owed)]++
		age := ""
		if err == nil {
			age = ", last written " + relativeTo(time.Unix(0, rec.UpdatedAt), faults)
		}
		lines = append(lines, fmt.Sprintf("run %s (%s): %s%s; %s", id, wants[id].workflow, where, age, owed))
	}
	var summary []string
	for g, c := range groups {
		summary = append(summary, fmt.Sprintf("%4d × %s", c, g))
	}
	sort.Strings(summary)
	return "by place:\n" + head(summary, 60) + "\nruns:\n" + head(lines, 40) + "\nstreams:\n" + head(notes, 60)
}

// relativeTo says when at was: before or after the nearest fault, or how
// long ago.
func relativeTo(at time.Time, faults []time.Time) string {
	best := -1
	for i, f := range faults {
		if best < 0 || absDur(at.Sub(f)) < absDur(at.Sub(faults[best])) {
			best = i
		}
	}
	if best < 0 {
		return time.Since(at).Round(time.Millisecond).String() + " ago"
	}
	d := faults[best].Sub(at)
	if d >= 0 {
		return fmt.Sprintf("%s before fault %d", d.Round(100*time.Microsecond), best+1)
	}
	return fmt.Sprintf("%s after fault %d", (-d).Round(100*time.Microsecond), best+1)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// requireAlive fails the test for each process that exited by itself (for
// instance because the broker was slow to come back), with its last lines.
func requireAlive(t *testing.T, procs []*proctest.Proc) {
	t.Helper()
	for _, p := range procs {
		if p.Exited() {
			out := p.Output()
			if len(out) > 3000 {
				out = "…" + out[len(out)-3000:]
			}
			t.Errorf("%s exited by itself; its last output:\n%s", p.Name, out)
		}
	}
}

// requireCompletedAtMostOnce reads the completed events of workflow in the
// events stream (in memory by default: only runs that ended since the last
// server start are there) and fails for a run announced twice. A stream the
// restarted server did not bring back is noted, not failed (the run
// records, checked with their paths, are the truth).
func requireCompletedAtMostOnce(t *testing.T, js jetstream.JetStream, workflows ...string) {
	t.Helper()
	for _, wf := range workflows {
		counts, err := countCompleted(context.Background(), js, wf)
		if err != nil {
			t.Logf("events stream not readable (%v): after a server restart nothing re-created it", err)
			return
		}
		for id, c := range counts {
			require.LessOrEqual(t, c, 1, "run %s completed %d times in the events stream", id, c)
		}
		t.Logf("events stream: %d runs of %s completed since the last server start, none twice", len(counts), wf)
	}
}

// crashEnv is nats-server as its own OS process plus coordinators and
// workers built from cmd/, all on the server's one port.
type crashEnv struct {
	srv    *natstest.ServerProcess
	nc     *nats.Conn
	js     jetstream.JetStream
	cl     *client.Client
	coord  string
	worker string
	all    []*proctest.Proc // every process started, to find any that exited
}

func newCrashEnv(t *testing.T) *crashEnv {
	t.Helper()
	e := &crashEnv{srv: natstest.StartProcess(t),
		coord: proctest.Build(t, "./cmd/coordinator"), worker: faultWorker(t)}
	e.nc, e.js = e.srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, provision.Ensure(ctx, e.js, provision.Config{EventCapture: true}))
	cl, err := client.New(e.nc, client.Config{})
	require.NoError(t, err)
	e.cl = cl
	return e
}

// startEngine starts two coordinators and two workers (generation gen) and
// returns them.
func (e *crashEnv) startEngine(t *testing.T, gen int) []*proctest.Proc {
	t.Helper()
	var ps []*proctest.Proc
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("coordinator-%d.%d", gen, i)
		ps = append(ps, proctest.Start(t, name, e.coord, "-s", e.srv.URL, "-log-format", "json", "-ack-wait", "2s", "-shards", "8", "-event-capture"))
	}
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("worker-%d.%d", gen, i)
		ps = append(ps, proctest.Start(t, name, e.worker, "-s", e.srv.URL, "-log-format", "json", "-ack-wait", "2s", "-id", name))
	}
	e.all = append(e.all, ps...)
	return ps
}

// waitDefined waits until a worker has registered workflow.
func waitDefined(t *testing.T, js jetstream.JetStream, workflow string) {
	t.Helper()
	natstest.WaitFor(t, 60*time.Second, "workflow "+workflow+" registered", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		kv, err := js.KeyValue(ctx, layout.DefinitionsBucket(protocol.MustNames("")))
		if err != nil {
			return false
		}
		_, err = kv.Get(ctx, layout.LatestDefinitionKey(workflow))
		return err == nil
	})
}

// rawRecord reads run id's record as stored (the wire type), for diagnosis.
func rawRecord(ctx context.Context, js jetstream.JetStream, id string) (*protocol.RunRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, layout.RunsBucket(protocol.MustNames("")))
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, layout.RunKey(id))
	if err != nil {
		return nil, err
	}
	var rec protocol.RunRecord
	if err := wirecodec.Decode(e.Value(), &rec, 8<<20); err != nil {
		return nil, err
	}
	return &rec, nil
}

// faultWorker builds cmd/worker with the fault suite's tasks compiled in
// (build tag canofaults; see internal/wire/faults): the shipped binary does
// not carry them.
func faultWorker(t testing.TB) string {
	return proctest.BuildTagged(t, "./cmd/worker", "canofaults")
}
