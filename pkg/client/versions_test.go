package client_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// gates hold gate tasks until the test opens them.
var gates sync.Map // name → *gateState

type gateState struct {
	entered chan struct{} // receives once per run entering the gate
	open    chan struct{} // closed to let every run through
}

func newGate(name string) *gateState {
	g := &gateState{entered: make(chan struct{}, 16), open: make(chan struct{})}
	gates.Store(name, g)
	return g
}

// gate waits for its gate to open, then moves to done.
type gate struct {
	Name string `msgpack:"name"`
}

func (gate) Kind() string { return "gate" }
func (g gate) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	v, ok := gates.Load(g.Name)
	if !ok {
		return fsm.Result{}, fsm.Permanent(context.Canceled)
	}
	st := v.(*gateState)
	st.entered <- struct{}{}
	select {
	case <-st.open:
		return fsm.Next(SDone), nil
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
}

func startGateWorker(t *testing.T, nc *nats.Conn, wfs ...worker.Definer) (*worker.Worker, error) {
	t.Helper()
	reg := &fsm.Registry{}
	fsm.Register[gate](reg)
	fsm.Register[step](reg)
	fsm.Register[adder](reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: wfs, Logger: slog.New(slog.DiscardHandler),
		DisableBreakers: true, PresenceInterval: -1})
	require.NoError(t, err)
	if err := w.Start(awaitCtx(t)); err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w, nil
}

// Changing a workflow (only its total timeout here) and starting a worker
// with it registers a new version and moves latest to it; a run started
// before finishes on the version it was pinned to. Old versions can then be
// deleted.
func TestWorkflowVersionFollowsTheCode(t *testing.T) {
	t.Parallel()
	b := setupB(t)
	ctx := awaitCtx(t)
	g := newGate(t.Name())
	wf := func(total time.Duration) *fsm.Workflow[S] {
		return fsm.New[S]("evolving", SA).Register(SA, gate{Name: t.Name()}).Exit(SDone).TotalTimeout(total)
	}
	oldDef, err := wf(time.Hour).Definition()
	require.NoError(t, err)
	newDef, err := wf(2 * time.Hour).Definition()
	require.NoError(t, err)
	require.NotEqual(t, oldDef.Version, newDef.Version, "a changed workflow has a new version")

	first, err := startGateWorker(t, b.nc, wf(time.Hour))
	require.NoError(t, err)
	before, err := b.client.Trigger(ctx, "evolving", nil)
	require.NoError(t, err)
	select {
	case <-g.entered:
	case <-ctx.Done():
		t.Fatal("the first run never reached its task")
	}

	// Redeploy: the changed workflow's worker starts; the old one stops
	// once the new one is up (the old run's task keeps running on it).
	_, err = startGateWorker(t, b.nc, wf(2*time.Hour))
	require.NoError(t, err, "a changed workflow without an explicit version registers")
	list, err := b.client.Workflows(ctx)
	require.NoError(t, err)
	wi := workflowNamed(t, list, "evolving")
	require.Equal(t, newDef.Version, wi.Latest)
	require.Len(t, wi.Versions, 2)
	require.Equal(t, oldDef.Version, wi.Versions[0].Version)
	require.Equal(t, newDef.Version, wi.Versions[1].Version)

	after, err := b.client.Trigger(ctx, "evolving", nil)
	require.NoError(t, err)
	close(g.open)
	for _, tc := range []struct {
		run     string
		version string
		total   time.Duration
	}{{before, oldDef.Version, time.Hour}, {after, newDef.Version, 2 * time.Hour}} {
		out, err := b.client.Await(ctx, tc.run)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, out.Status)
		rec, err := b.client.Get(ctx, tc.run)
		require.NoError(t, err)
		require.Equal(t, tc.version, rec.Version, "run %s", tc.run)
		require.Equal(t, tc.total, rec.Deadline.Sub(rec.CreatedAt), "run %s keeps its version's timeout", tc.run)
	}
	require.NoError(t, first.Stop(ctx))

	// A restart with unchanged code registers nothing new.
	_, err = startGateWorker(t, b.nc, wf(2*time.Hour))
	require.NoError(t, err)

	// The old version can be deleted; the latest only when told.
	err = b.client.DeleteWorkflowVersion(ctx, "evolving", newDef.Version, nil)
	require.ErrorIs(t, err, client.ErrLatestVersion)
	require.ErrorContains(t, err, "AllowLatest")
	require.NoError(t, b.client.DeleteWorkflowVersion(ctx, "evolving", oldDef.Version, nil))
	err = b.client.DeleteWorkflowVersion(ctx, "evolving", oldDef.Version, nil)
	require.ErrorIs(t, err, client.ErrWorkflowNotFound)
	list, err = b.client.Workflows(ctx)
	require.NoError(t, err)
	wi = workflowNamed(t, list, "evolving")
	require.Equal(t, []string{newDef.Version}, versionNames(wi))
	require.Equal(t, newDef.Version, wi.Latest)
	_, err = b.client.Workflow(ctx, "evolving", oldDef.Version)
	require.ErrorIs(t, err, client.ErrWorkflowNotFound)

	require.NoError(t, b.client.DeleteWorkflowVersion(ctx, "evolving", newDef.Version,
		&client.DeleteWorkflowVersionOpts{AllowLatest: true}))
	_, err = b.client.Workflow(ctx, "evolving", "")
	require.ErrorIs(t, err, client.ErrWorkflowNotFound, "no version left: no latest either")
}

// Deleting the latest version when told moves latest to the newest one left.
func TestDeleteLatestMovesLatest(t *testing.T) {
	t.Parallel()
	b := setupB(t)
	ctx := awaitCtx(t)
	wf := func(v string) *fsm.Workflow[S] {
		return fsm.New[S]("moving", SA).Register(SA, step{SDone}).Exit(SDone).Version(v)
	}
	for _, v := range []string{"a1", "a2", "a3"} {
		_, err := startGateWorker(t, b.nc, wf(v))
		require.NoError(t, err)
	}
	require.NoError(t, b.client.DeleteWorkflowVersion(ctx, "moving", "a3", &client.DeleteWorkflowVersionOpts{AllowLatest: true}))
	def, err := b.client.Workflow(ctx, "moving", "")
	require.NoError(t, err)
	require.Equal(t, "a2", def.Version)
	_, err = b.client.Workflow(ctx, "moving", "a1")
	require.NoError(t, err)
	require.ErrorIs(t, b.client.DeleteWorkflowVersion(ctx, "moving", "a.b", nil), protocol.ErrInvalidName)
}

// An explicit version is a promise: different content under it refuses to
// start, and the error says what to do.
func TestExplicitVersionConflict(t *testing.T) {
	t.Parallel()
	b := setupB(t)
	wf := func(total time.Duration) *fsm.Workflow[S] {
		return fsm.New[S]("pinned", SA).Register(SA, step{SDone}).Exit(SDone).Version("v1").TotalTimeout(total)
	}
	_, err := startGateWorker(t, b.nc, wf(time.Hour))
	require.NoError(t, err)
	_, err = startGateWorker(t, b.nc, wf(time.Hour))
	require.NoError(t, err, "the same content registers again")
	_, err = startGateWorker(t, b.nc, wf(2*time.Hour))
	require.ErrorIs(t, err, worker.ErrDefinitionConflict)
	require.ErrorContains(t, err, "bump its version")
}

func versionNames(wi client.WorkflowInfo) []string {
	var out []string
	for _, v := range wi.Versions {
		out = append(out, v.Version)
	}
	return out
}

// An older version's worker starting again leaves latest on the newer
// version; PromoteWorkflowVersion is the explicit rollback, and new runs
// follow it.
func TestPromoteWorkflowVersion(t *testing.T) {
	t.Parallel()
	b := setupB(t)
	ctx := awaitCtx(t)
	wf := func(v string) *fsm.Workflow[S] {
		return fsm.New[S]("promoted", SA).Register(SA, step{SDone}).Exit(SDone).Version(v)
	}
	for _, v := range []string{"a1", "a2", "a1"} {
		_, err := startGateWorker(t, b.nc, wf(v))
		require.NoError(t, err)
	}
	def, err := b.client.Workflow(ctx, "promoted", "")
	require.NoError(t, err)
	require.Equal(t, "a2", def.Version, "an older version registered again leaves latest")

	require.NoError(t, b.client.PromoteWorkflowVersion(ctx, "promoted", "a1"))
	def, err = b.client.Workflow(ctx, "promoted", "")
	require.NoError(t, err)
	require.Equal(t, "a1", def.Version)
	require.Equal(t, "a1", def.Latest)
	// The coordinators learn the new latest from a watch of the bucket.
	natstest.WaitFor(t, 10*time.Second, "a run on the promoted version", func() bool {
		run, err := b.client.Run(ctx, "promoted", nil)
		require.NoError(t, err)
		return run.Version == "a1"
	})
	// The version rolled back from, its worker starting again, leaves
	// latest where the promote put it; a version new to the bucket moves it.
	_, err = startGateWorker(t, b.nc, wf("a2"))
	require.NoError(t, err)
	def, err = b.client.Workflow(ctx, "promoted", "")
	require.NoError(t, err)
	require.Equal(t, "a1", def.Version, "a2's worker restarting after the promote")
	_, err = startGateWorker(t, b.nc, wf("a3"))
	require.NoError(t, err)
	def, err = b.client.Workflow(ctx, "promoted", "")
	require.NoError(t, err)
	require.Equal(t, "a3", def.Version)

	err = b.client.PromoteWorkflowVersion(ctx, "promoted", "a9")
	require.ErrorIs(t, err, client.ErrWorkflowNotFound)
	require.ErrorContains(t, err, `"promoted" has no version "a9" (registered: a2, a1, a3)`, "in the order latest moves in: a1 promoted after a2")
	err = b.client.PromoteWorkflowVersion(ctx, "never_registered", "a1")
	require.ErrorIs(t, err, client.ErrWorkflowNotFound)
	require.ErrorContains(t, err, "no worker has registered it")
	require.ErrorIs(t, b.client.PromoteWorkflowVersion(ctx, "promoted", "a.b"), protocol.ErrInvalidName)
}

// logLines collects a logger's output; tests wait for a line with
// waitFor.
type logLines struct {
	mu      sync.Mutex
	buf     []byte
	written chan struct{} // closed and replaced on each write
}

func newLogLines() *logLines { return &logLines{written: make(chan struct{})} }

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	close(l.written)
	l.written = make(chan struct{})
	return len(p), nil
}

// waitFor waits until the output contains s, or fails t when ctx ends.
func (l *logLines) waitFor(ctx context.Context, t *testing.T, s string) {
	t.Helper()
	for {
		l.mu.Lock()
		found, written, all := strings.Contains(string(l.buf), s), l.written, string(l.buf)
		l.mu.Unlock()
		if found {
			return
		}
		select {
		case <-written:
		case <-ctx.Done():
			t.Fatalf("never logged %q; logs:\n%s", s, all)
		}
	}
}

// A version that running or scheduled runs use is not deleted unless the
// caller insists. Deleted anyway, its runs can still be cancelled (running
// or scheduled); a result of one waits, refused with an error that says
// what to do, until the version is registered again, and then the run
// completes.
func TestDeleteVersionInUse(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, _ := srv.Connect(t)
	ctx := awaitCtx(t)
	logs := newLogLines()
	startCoordinator := func() *coordinator.Coordinator {
		co, err := coordinator.New(nc, coordinator.Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		require.NoError(t, err)
		require.NoError(t, co.Start(ctx))
		t.Cleanup(func() { _ = co.Stop(context.Background()) })
		return co
	}
	co := startCoordinator()
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	g := newGate(t.Name())
	var openGate sync.Once
	wf := func(v string) *fsm.Workflow[S] {
		return fsm.New[S]("pinned", SA).Register(SA, gate{Name: t.Name()}).Exit(SDone).Version(v)
	}
	_, err = startGateWorker(t, nc, wf("v1"))
	require.NoError(t, err)
	t.Cleanup(func() { openGate.Do(func() { close(g.open) }) }) // before the worker stops (cleanups run last first)
	running, err := cl.Trigger(ctx, "pinned", nil)
	require.NoError(t, err)
	waiting, err := cl.Trigger(ctx, "pinned", nil)
	require.NoError(t, err)
	scheduled, err := cl.Trigger(ctx, "pinned", &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	for range 2 {
		select {
		case <-g.entered:
		case <-ctx.Done():
			t.Fatal("the runs never reached their task")
		}
	}
	_, err = startGateWorker(t, nc, wf("v2")) // v1 is no longer the latest
	require.NoError(t, err)

	err = cl.DeleteWorkflowVersion(ctx, "pinned", "v1", nil)
	require.ErrorIs(t, err, client.ErrVersionInUse)
	require.ErrorContains(t, err, "3 running or scheduled runs use it")
	var inUse *client.VersionInUseError
	require.ErrorAs(t, err, &inUse)
	require.ElementsMatch(t, []string{running, waiting, scheduled}, inUse.Runs)
	require.ErrorContains(t, err, "AllowInUse")
	_, err = cl.Workflow(ctx, "pinned", "v1")
	require.NoError(t, err, "refused: still registered")
	require.NoError(t, cl.DeleteWorkflowVersion(ctx, "pinned", "v1", &client.DeleteWorkflowVersionOpts{AllowInUse: true}))
	_, err = cl.Workflow(ctx, "pinned", "v1")
	require.ErrorIs(t, err, client.ErrWorkflowNotFound)
	// A coordinator that had v1 cached drops it when its watch sees the
	// delete (TestDeletedVersionForgotten); one started now never had it,
	// which makes what follows certain.
	require.NoError(t, co.Stop(ctx))
	startCoordinator()

	// Cancels end runs whose version is gone.
	for _, id := range []string{running, scheduled} {
		require.NoError(t, cl.Cancel(ctx, id, "its version was deleted"))
		out, err := cl.Await(ctx, id)
		require.ErrorIs(t, err, fsm.ErrCancelled)
		require.ErrorContains(t, err, "its version was deleted")
		require.Equal(t, client.RunCancelled, out.Status, "run %s", id)
	}

	// A result waits for the version: both gated tasks return now (the
	// cancelled run's result is late and changes nothing).
	openGate.Do(func() { close(g.open) })
	logs.waitFor(ctx, t, "run "+waiting+" cannot move on until that version is registered again")
	logs.waitFor(ctx, t, "canoctl runs cancel "+waiting)
	run, err := cl.Get(ctx, waiting)
	require.NoError(t, err)
	require.Equal(t, client.RunRunning, run.Status, "the result did not move the run")

	_, err = startGateWorker(t, nc, wf("v1")) // registered again
	require.NoError(t, err)
	out, err := cl.Await(ctx, waiting)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	run, err = cl.Get(ctx, waiting)
	require.NoError(t, err)
	require.Equal(t, "v1", run.Version)
}
