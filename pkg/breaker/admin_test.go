package breaker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/breakerkv"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// TestAdminBadInput: a name that is not a token is refused before any
// I/O; a stored state that does not decode fails List with the key, and
// Reset overwrites it with a closed state of the default policy, stamped
// with the time of the reset.
func TestAdminBadInput(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	_, kv := openKV(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err := breakerkv.Reset(ctx, kv, "has.dot")
	require.ErrorIs(t, err, protocol.ErrInvalidName)
	require.ErrorContains(t, err, "breaker: reset: name")

	_, err = kv.Put(ctx, layout.BreakerKey("garbled"), []byte{0xc1})
	require.NoError(t, err)
	_, err = breakerkv.List(ctx, kv)
	require.ErrorContains(t, err, "breaker: decode "+layout.BreakerKey("garbled"))

	before := time.Now()
	require.NoError(t, breakerkv.Reset(ctx, kv, "garbled"))
	all, err := breakerkv.List(context.Background(), kv) // no deadline: TimeoutDefault applies
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, "garbled", all[0].Name)
	require.Equal(t, string(breaker.StateClosed), string(all[0].Phase))
	require.GreaterOrEqual(t, all[0].UpdatedAt, before.UnixNano(), "a reset is a change: it has a time")
}

func TestNewKVStoreRefuses(t *testing.T) {
	t.Parallel()
	_, err := breakerkv.NewKVStore(nil, breakerkv.KVStoreConfig{})
	require.EqualError(t, err, "breaker: kv is nil")
	srv := natstest.StartProvisioned(t, provision.Config{})
	_, kv := openKV(t, srv)
	_, err = breakerkv.NewKVStore(kv, breakerkv.KVStoreConfig{Timeout: -time.Second})
	require.ErrorIs(t, err, breaker.ErrInvalidSettings)
	require.ErrorContains(t, err, "KVStoreConfig.Timeout -1s")
}
