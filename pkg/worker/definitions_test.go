package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// weights is a task whose parameters hold a map: Go iterates maps in a
// random order, so its encoding is deterministic only if the codec sorts
// the keys.
type weights struct {
	W map[string]int `msgpack:"w"`
}

func (weights) Kind() string { return "weights" }
func (weights) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next("done"), nil
}

// weightsWorkflow builds the workflow afresh, as each worker process does.
func weightsWorkflow() *fsm.Workflow[string] {
	w := map[string]int{}
	for i := range 64 {
		w[fmt.Sprintf("k%02d", i)] = i
	}
	return fsm.New[string]("weighted", "work").Register("work", weights{W: w}).Exit("done")
}

func startDefWorker(t *testing.T, nc *nats.Conn, wf worker.Definer) (*worker.Worker, error) {
	t.Helper()
	reg := &fsm.Registry{}
	fsm.Register[weights](reg)
	fsm.Register[scripted](reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{wf},
		DisableBreakers: true, PresenceInterval: -1})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = w.Start(ctx)
	if err == nil {
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
	}
	return w, err
}

// A task with a map parameter registers the same definition from a second
// worker and again after a restart (it failed with ErrDefinitionConflict
// when the parameters were encoded in map iteration order).
func TestRegisterMapParamsFromManyWorkers(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, _ := srv.Connect(t)
	first, err := startDefWorker(t, nc, weightsWorkflow())
	require.NoError(t, err)
	_, err = startDefWorker(t, nc, weightsWorkflow())
	require.NoError(t, err, "second worker")
	require.NoError(t, first.Stop(context.Background()))
	for i := range 3 {
		_, err = startDefWorker(t, nc, weightsWorkflow())
		require.NoError(t, err, "restart %d", i)
	}
}

// versioned is workflow "rolling" at an explicit version, as a worker of
// one release of the code registers it.
func versioned(v string) *fsm.Workflow[string] {
	return fsm.New[string]("rolling", "work").Register("work", scripted{Name: "noop"}).Exit("done").Version(v)
}

// startVersionWorker starts a worker registering wf, logging to logs when
// it is not nil, and stops it at once: only its registration matters.
func startVersionWorker(t *testing.T, nc *nats.Conn, wf worker.Definer, logs *natstest.LogBuffer) {
	t.Helper()
	reg := &fsm.Registry{}
	fsm.Register[scripted](reg)
	log := slog.New(slog.DiscardHandler)
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{wf},
		DisableBreakers: true, PresenceInterval: -1, Logger: log})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.Start(ctx))
	require.NoError(t, w.Stop(ctx))
}

// latestOf reads workflow name's latest pointer.
func latestOf(t *testing.T, kv jetstream.KeyValue, name string) string {
	t.Helper()
	e, err := kv.Get(context.Background(), layout.LatestDefinitionKey(name))
	require.NoError(t, err)
	return string(e.Value())
}

func definitionsKV(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), layout.DefinitionsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	return kv
}

// Latest follows the order versions were first registered in, not the
// order workers start in: an old worker restarting during a rolling deploy
// leaves latest on the new version, and says how to move it.
func TestLatestFollowsRegistrationOrder(t *testing.T) {
	t.Parallel()

	type testBundle struct {
		nc *nats.Conn
		kv jetstream.KeyValue
	}
	setup := func(t *testing.T) *testBundle {
		t.Helper()
		srv := natstest.StartProvisioned(t, provision.Config{})
		nc, js := srv.Connect(t)
		return &testBundle{nc: nc, kv: definitionsKV(t, js)}
	}

	t.Run("OldWorkerRestarting", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		startVersionWorker(t, b.nc, versioned("v1"), nil)
		require.Equal(t, "v1", latestOf(t, b.kv, "rolling"))
		startVersionWorker(t, b.nc, versioned("v2"), nil)
		require.Equal(t, "v2", latestOf(t, b.kv, "rolling"), "a new version moves latest")

		var logs natstest.LogBuffer
		startVersionWorker(t, b.nc, versioned("v1"), &logs)
		require.Equal(t, "v2", latestOf(t, b.kv, "rolling"), "an older version registered again leaves latest")
		require.Contains(t, logs.String(),
			"workflow registered; latest stays at v2 (registered after this version); canoctl workflows promote to change it")

		startVersionWorker(t, b.nc, versioned("v2"), nil)
		require.Equal(t, "v2", latestOf(t, b.kv, "rolling"))
		startVersionWorker(t, b.nc, versioned("v3"), nil)
		require.Equal(t, "v3", latestOf(t, b.kv, "rolling"))
	})

	t.Run("CrashedBeforeMovingLatest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		startVersionWorker(t, b.nc, versioned("v1"), nil)
		// A worker of v2 created its version, then died before moving
		// latest.
		def, err := versioned("v2").Definition()
		require.NoError(t, err)
		data, err := wirecodec.Encode(def)
		require.NoError(t, err)
		_, err = b.kv.Create(context.Background(), layout.DefinitionKey("rolling", "v2"), data)
		require.NoError(t, err)
		require.Equal(t, "v1", latestOf(t, b.kv, "rolling"))

		startVersionWorker(t, b.nc, versioned("v2"), nil)
		require.Equal(t, "v2", latestOf(t, b.kv, "rolling"), "the restarted worker moves latest")
	})

	t.Run("LatestDeleted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		startVersionWorker(t, b.nc, versioned("v1"), nil)
		startVersionWorker(t, b.nc, versioned("v2"), nil)
		require.NoError(t, b.kv.Purge(context.Background(), layout.DefinitionKey("rolling", "v2")))
		startVersionWorker(t, b.nc, versioned("v1"), nil)
		require.Equal(t, "v1", latestOf(t, b.kv, "rolling"), "latest naming a deleted version moves")

		require.NoError(t, b.kv.Purge(context.Background(), layout.LatestDefinitionKey("rolling")))
		startVersionWorker(t, b.nc, versioned("v1"), nil)
		require.Equal(t, "v1", latestOf(t, b.kv, "rolling"), "a missing latest is created")
	})

	// Workers of many versions register at once: latest ends on the
	// version created last, whichever worker wrote latest last.
	t.Run("Racing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const n = 8
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { startVersionWorker(t, b.nc, versioned(fmt.Sprintf("v%d", i)), nil) })
		}
		wg.Wait()
		newest, newestRev := "", uint64(0)
		for i := range n {
			e, err := b.kv.Get(context.Background(), layout.DefinitionKey("rolling", fmt.Sprintf("v%d", i)))
			require.NoError(t, err)
			if e.Revision() > newestRev {
				newest, newestRev = fmt.Sprintf("v%d", i), e.Revision()
			}
		}
		require.Equal(t, newest, latestOf(t, b.kv, "rolling"))
	})
}
