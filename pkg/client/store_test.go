package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
	"github.com/cano-nats/cano/pkg/protocol"
)

// An ended run's store scope is removed RunStoreRetention after the run
// ended, by a durable timer set only for runs that used the store.
func TestRunStoreScopePurgedAfterRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := awaitCtx(t)
	out, err := b.client.Run(ctx, demo.WorkflowName, nil)
	require.NoError(t, err)
	store, err := natskv.New(context.Background(), b.js, natskv.Config{Bucket: "cano_store"})
	require.NoError(t, err)
	scope := kvstore.Scoped(store, kvstore.RunScope(out.ID))
	keys, err := scope.Keys(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []string{"source_1", "source_2", "source_3"}, keys, "the scope is kept until the retention passes")
	natstest.WaitFor(t, 30*time.Second, "the run's scope to be purged", func() bool {
		keys, err := store.Keys(ctx, "run."+out.ID+".")
		return err == nil && len(keys) == 0
	})
	// Runs that never touched the store set no purge timer.
	other, err := b.client.Run(ctx, "chain", nil)
	require.NoError(t, err)
	require.False(t, runRecord(t, b.js, other.ID).StoreUsed)
	require.True(t, runRecord(t, b.js, out.ID).StoreUsed)
}

// runRecord reads run id's wire record (for engine fields the client does
// not show).
func runRecord(t *testing.T, js jetstream.JetStream, id string) *protocol.RunRecord {
	t.Helper()
	ctx := awaitCtx(t)
	kv, err := js.KeyValue(ctx, layout.RunsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	e, err := kv.Get(ctx, layout.RunKey(id))
	require.NoError(t, err)
	var rec protocol.RunRecord
	require.NoError(t, wirecodec.Decode(e.Value(), &rec, 0))
	return &rec
}
