package coordinator

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// TestLatestVerifiedPerGeneration: a cached latest version is used only in
// the generation it was verified in; after a reconnect of the connection or
// a restart of the watch the next lookup reads latest.<name> from the
// bucket. The watch is not running here, so only those reads can see v2.
func TestLatestVerifiedPerGeneration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	_, js := srv.Connect(t)
	kv, err := js.KeyValue(ctx, layout.DefinitionsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	register := func(version string) {
		def, err := demo.OneTask().Definition()
		require.NoError(t, err)
		def.Version = version
		data, err := wirecodec.Encode(def)
		require.NoError(t, err)
		_, err = kv.Put(ctx, layout.DefinitionKey(def.Name, version), data)
		require.NoError(t, err)
		_, err = kv.PutString(ctx, layout.LatestDefinitionKey(def.Name), version)
		require.NoError(t, err)
	}
	var reconnects atomic.Uint64
	d := newDefinitions(kv, nil, reconnects.Load, slog.Default())
	latest := func() string {
		m, err := d.machine(ctx, demo.OneTaskName, "")
		require.NoError(t, err)
		return m.Definition().Version
	}

	register("v1")
	require.Equal(t, "v1", latest(), "read from the bucket")
	register("v2")
	require.Equal(t, "v1", latest(), "verified and cached: no read")
	reconnects.Add(1)
	require.Equal(t, "v2", latest(), "a reconnect: read again")
	register("v3")
	require.Equal(t, "v2", latest())
	d.restarted()
	require.Equal(t, "v3", latest(), "a watch restart: read again")

	// A late watch value with an older revision does not win.
	d.apply(layout.LatestDefinitionKey(demo.OneTaskName), []byte("v1"), 1, true, d.current())
	require.Equal(t, "v3", latest())
}
