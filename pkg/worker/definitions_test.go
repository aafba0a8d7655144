package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/fsm"
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
