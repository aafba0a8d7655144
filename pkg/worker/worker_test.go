package worker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// A worker started before anything created the streams and buckets says
// what to do first.
func TestStartBeforeProvisioning(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, _ := srv.Connect(t)
	reg := &fsm.Registry{}
	fsm.Register[scripted](reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{versioned("v1")},
		PresenceInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = w.Start(ctx)
	require.ErrorIs(t, err, jetstream.ErrBucketNotFound)
	require.ErrorContains(t, err, "the streams and buckets do not exist yet: run provision.Ensure "+
		"(or set worker.Config.Provision, or start a coordinator, which provisions) before starting a worker")
	require.NoError(t, w.Stop(ctx))
}
