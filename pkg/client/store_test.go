package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/demo"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/kvstore"
)

// An ended run's store scope is removed RunStoreRetention after the run
// ended, by a durable timer set only for runs that used the store.
func TestRunStoreScopePurgedAfterRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := awaitCtx(t)
	out, err := b.client.Run(ctx, demo.WorkflowName, nil)
	require.NoError(t, err)
	store, err := kvstore.NewKV(context.Background(), b.js, kvstore.Config{Bucket: "cano_store"})
	require.NoError(t, err)
	scope := kvstore.Scoped(store, kvstore.RunScope(out.RunID))
	keys, err := scope.Keys(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []string{"source_1", "source_2", "source_3"}, keys, "the scope is kept until the retention passes")
	natstest.WaitFor(t, 30*time.Second, "the run's scope to be purged", func() bool {
		keys, err := store.Keys(ctx, "run."+out.RunID+".")
		return err == nil && len(keys) == 0
	})
	// Runs that never touched the store set no purge timer.
	other, err := b.client.Run(ctx, "chain", nil)
	require.NoError(t, err)
	rec, err := b.client.Get(ctx, other.RunID)
	require.NoError(t, err)
	require.False(t, rec.StoreUsed)
	done, err := b.client.Get(ctx, out.RunID)
	require.NoError(t, err)
	require.True(t, done.StoreUsed)
}
