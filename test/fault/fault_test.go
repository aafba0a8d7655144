// Package fault holds the fault suite: real OS processes built from cmd/,
// a real JetStream server, processes killed with SIGKILL mid-load. Each
// test logs what it did and what it checked.
package fault

import (
	"context"
	"fmt"
	"os"
	"slices"
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

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.Cleanup()
	os.Exit(code)
}

type bundle struct {
	srv    *natstest.Server
	nc     *nats.Conn
	client *client.Client
	coord  string
	worker string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{EventCapture: true})
	nc, _ := srv.Connect(t)
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	return &bundle{srv: srv, nc: nc, client: cl,
		coord: proctest.Build(t, "./cmd/coordinator"), worker: faultWorker(t)}
}

func (b *bundle) startCoordinator(t *testing.T, name string, flags ...string) *proctest.Proc {
	return proctest.Start(t, name, b.coord, b.coordinatorArgs(flags)...)
}

func (b *bundle) coordinatorArgs(flags []string) []string {
	return append([]string{"-s", b.srv.URL, "-log-format", "json", "-ack-wait", "2s", "-shards", "8", "-event-capture"}, flags...)
}

// startFaultyCoordinator starts "coordinator-faulty", a build with the
// canofaults tag told to SIGKILL itself at fault (CANO_FAULT_COORDINATOR,
// pkg/coordinator/faults_canofaults.go), with the bundle's coordinator
// flags, and waits until it has started.
func (b *bundle) startFaultyCoordinator(t *testing.T, fault string) *proctest.Proc {
	t.Helper()
	faulty := proctest.BuildTagged(t, "./cmd/coordinator", "canofaults")
	t.Setenv("CANO_FAULT_COORDINATOR", fault) // read only by the canofaults build
	p := proctest.Start(t, "coordinator-faulty", faulty, b.coordinatorArgs(nil)...)
	natstest.WaitFor(t, 30*time.Second, "the faulty coordinator started", func() bool {
		return strings.Contains(p.Output(), "coordinator started")
	})
	return p
}

func (b *bundle) startWorker(t *testing.T, name string) *proctest.Proc {
	return proctest.Start(t, name, b.worker, "-s", b.srv.URL, "-log-format", "json", "-ack-wait", "2s", "-id", name)
}

// waitRegistered waits until a worker has registered the demo definitions.
func (b *bundle) waitRegistered(t *testing.T) {
	ctx := context.Background()
	var last error
	defer func() {
		if t.Failed() && last != nil {
			t.Logf("last trigger error: %v", last)
		}
	}()
	natstest.WaitFor(t, 30*time.Second, "demo definitions registered", func() bool {
		_, last = b.client.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{NoWait: false})
		return last == nil
	})
}

// waitDefined waits until a worker has registered workflow: a trigger that
// arrives before its definition is refused (and dead-lettered) as unknown.
func (b *bundle) waitDefined(t *testing.T, workflow string) {
	t.Helper()
	js, err := jetstream.New(b.nc)
	require.NoError(t, err)
	ctx := context.Background()
	natstest.WaitFor(t, 30*time.Second, "workflow "+workflow+" registered", func() bool {
		kv, err := js.KeyValue(ctx, layout.DefinitionsBucket(protocol.MustNames("")))
		if err != nil {
			return false
		}
		_, err = kv.Get(ctx, layout.LatestDefinitionKey(workflow))
		return err == nil
	})
}

func (b *bundle) trigger(t *testing.T, workflow string, n int) []string {
	t.Helper()
	b.waitDefined(t, workflow)
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				id, err := b.client.Trigger(context.Background(), workflow, &client.TriggerOpts{NoWait: true})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return ids
}

// awaitAll waits for every run and checks each completed with exactly the
// expected path (each transition once).
func (b *bundle) awaitAll(t *testing.T, ids []string, wantPath []string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	var bad atomic.Int32
	var mu sync.Mutex
	var firstErr error
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(ids); i += 16 {
				out, err := b.client.Await(ctx, ids[i])
				if err == nil && !slices.Equal(out.Path, wantPath) {
					err = fmt.Errorf("run %s path %v, want %v", ids[i], out.Path, wantPath)
				}
				if err != nil {
					rec, gerr := b.client.Get(context.Background(), ids[i])
					t.Logf("run %s: %+v %v", ids[i], rec, gerr)
					bad.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, firstErr, "%d of %d runs did not complete as expected", bad.Load(), len(ids))
}

// completedEvents counts completed events per run on the events stream,
// once every run in ids has one (or a minute has passed: the caller's checks
// then say what is missing). It waits for these ids, not for a number of
// runs: the stream also holds events of other runs of the workflow (the
// probe runs of waitRegistered). A run's completed event may come after
// its record: when a coordinator is killed between the two, the event is
// re-published once the worker's result request times out and the result
// reaches another coordinator.
func (b *bundle) completedEvents(t *testing.T, workflow string, ids []string) map[string]int {
	t.Helper()
	_, js := b.srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := protocol.MustNames("")
	var counts map[string]int
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) { // a bounded poll
		counts = map[string]int{}
		cons, err := js.OrderedConsumer(ctx, layout.EventsStream(n), jetstreamOrdered(n.EventSubject(workflow, "*", protocol.EventCompleted)))
		require.NoError(t, err)
		info, err := cons.Info(ctx)
		require.NoError(t, err)
		for i := 0; i < int(info.NumPending); i++ {
			m, err := cons.Next()
			require.NoError(t, err)
			var ev protocol.Event
			require.NoError(t, wirecodec.Decode(m.Data(), &ev, 0))
			counts[ev.RunID]++
		}
		if allCounted(counts, ids) || time.Now().After(deadline) {
			return counts
		}
	}
}

func allCounted(counts map[string]int, ids []string) bool {
	for _, id := range ids {
		if counts[id] == 0 {
			return false
		}
	}
	return true
}

func requireEachOnce(t *testing.T, ids []string, counts map[string]int) {
	t.Helper()
	dups := 0
	for _, id := range ids {
		require.NotZero(t, counts[id], "no completed event for %s", id)
		if counts[id] > 1 {
			dups++
		}
	}
	require.Zero(t, dups, "runs completed more than once")
}

func chainPath() []string {
	p := make([]string, 0, 11)
	for i := 0; i < 10; i++ {
		p = append(p, fmt.Sprintf("s%d", i))
	}
	return append(p, "done")
}

func TestTwoCoordinatorsTwoWorkersAsProcesses(t *testing.T) {
	b := setup(t)
	b.startCoordinator(t, "coordinator-1")
	b.startCoordinator(t, "coordinator-2")
	b.startWorker(t, "worker-1")
	b.startWorker(t, "worker-2")
	b.waitRegistered(t)
	const n = 2000
	ids := b.trigger(t, demo.ChainName, n)
	b.awaitAll(t, ids, chainPath(), 3*time.Minute)
	requireEachOnce(t, ids, b.completedEvents(t, demo.ChainName, ids))
	t.Logf("2 coordinators + 2 workers (OS processes): started %d runs of %s, %d completed, each path %d transitions once, 0 duplicates",
		n, demo.ChainName, n, len(chainPath()))
}

func TestKillWorkerMidTask(t *testing.T) {
	b := setup(t)
	b.startCoordinator(t, "coordinator-1")
	w1 := b.startWorker(t, "worker-1")
	b.startWorker(t, "worker-2")
	b.waitRegistered(t)
	const n = 500
	started := make(chan struct{}, n)
	sub, err := b.nc.Subscribe("cano.event."+demo.SleepyName+".*.started", func(*nats.Msg) { started <- struct{}{} })
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	ids := b.trigger(t, demo.SleepyName, n)
	for i := 0; i < 50; i++ {
		natstest.Recv(t, started, 30*time.Second)
	}
	w1.Kill()
	t.Logf("killed worker-1 (SIGKILL) with runs in flight")
	b.awaitAll(t, ids, []string{"sleep", "after", "done"}, 3*time.Minute)
	requireEachOnce(t, ids, b.completedEvents(t, demo.SleepyName, ids))
	t.Logf("kill a worker mid-task: started %d runs, %d completed, 0 completed twice", n, n)
}

func TestKillCoordinatorMidLoad(t *testing.T) {
	b := setup(t)
	c1 := b.startCoordinator(t, "coordinator-1")
	b.startCoordinator(t, "coordinator-2")
	b.startWorker(t, "worker-1")
	b.startWorker(t, "worker-2")
	b.waitRegistered(t)
	const n = 500
	completed := make(chan struct{}, n)
	sub, err := b.nc.Subscribe("cano.event."+demo.ChainName+".*.completed", func(*nats.Msg) { completed <- struct{}{} })
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	ids := b.trigger(t, demo.ChainName, n)
	for i := 0; i < 50; i++ {
		natstest.Recv(t, completed, 60*time.Second)
	}
	c1.Kill()
	t.Logf("killed coordinator-1 (SIGKILL) with runs in flight")
	b.awaitAll(t, ids, chainPath(), 3*time.Minute)
	requireEachOnce(t, ids, b.completedEvents(t, demo.ChainName, ids))
	t.Logf("kill a coordinator mid-load: started %d runs, %d completed, each transition once, 0 completed twice", n, n)
}

// The seed README's example across two worker processes: three parallel
// fetch branches write source_N to the run's store scope (per-run), the
// next state — on whichever worker — reads them back.
func TestSeedExampleAcrossTwoWorkerProcesses(t *testing.T) {
	b := setup(t)
	b.startCoordinator(t, "coordinator-1")
	b.startWorker(t, "worker-1")
	b.startWorker(t, "worker-2")
	b.waitRegistered(t)
	const n = 20
	ids := b.trigger(t, demo.WorkflowName, n)
	b.awaitAll(t, ids, []string{"start", "aggregate", "complete"}, time.Minute)
	for _, id := range ids {
		out, err := b.client.Await(context.Background(), id)
		require.NoError(t, err)
		var joined string
		require.NoError(t, out.Output(&joined))
		require.Equal(t, "data_from_1,data_from_2,data_from_3", joined)
	}
	t.Logf("seed example across 2 worker processes: %d runs, each aggregated source_1..3 from its run scope", n)
}
