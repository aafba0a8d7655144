package coordinator

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// definitionsRig starts a server with the definitions bucket; put stores
// demo.OneTask at a version, and makes it the latest when told.
func definitionsRig(t *testing.T) (context.Context, jetstream.KeyValue, func(version string, latest bool)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	srv := natstest.StartProvisioned(t, provision.Config{})
	_, js := srv.Connect(t)
	kv, err := js.KeyValue(ctx, layout.DefinitionsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	put := func(version string, latest bool) {
		def, err := demo.OneTask().Definition()
		require.NoError(t, err)
		def.Version = version
		data, err := wirecodec.Encode(def)
		require.NoError(t, err)
		_, err = kv.Put(ctx, layout.DefinitionKey(def.Name, version), data)
		require.NoError(t, err)
		if latest {
			_, err = kv.PutString(ctx, layout.LatestDefinitionKey(def.Name), version)
			require.NoError(t, err)
		}
	}
	return ctx, kv, put
}

// TestLatestVerifiedPerGeneration: a cached latest version is used only in
// the generation it was verified in; after a reconnect of the connection or
// a restart of the watch the next lookup reads latest.<name> from the
// bucket. The watch is not running here, so only those reads can see v2.
func TestLatestVerifiedPerGeneration(t *testing.T) {
	t.Parallel()
	ctx, kv, put := definitionsRig(t)
	register := func(version string) { put(version, true) }
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

// TestDeletedVersionForgotten: the watch drops a deleted version's machine
// and a deleted latest pointer, so a coordinator that had them cached
// answers as one that never saw them.
func TestDeletedVersionForgotten(t *testing.T) {
	t.Parallel()
	ctx, kv, put := definitionsRig(t)
	put("v1", false)
	put("v2", true)
	def, err := demo.OneTask().Definition()
	require.NoError(t, err)

	wctx, stop := context.WithCancel(ctx)
	defer stop()
	d := newDefinitions(kv, nil, func() uint64 { return 0 }, slog.New(slog.DiscardHandler))
	require.NoError(t, d.start(ctx, wctx))
	t.Cleanup(func() { _ = d.wait(context.Background()) })
	for _, v := range []string{"v1", "v2", ""} {
		_, err := d.machine(ctx, def.Name, v)
		require.NoError(t, err, "version %q", v)
	}

	// gone polls until lookup fails as an unknown workflow, which a cached
	// machine would not (bounded by ctx).
	gone := func(version string) error {
		t.Helper()
		for {
			_, err := d.machine(ctx, def.Name, version)
			if err != nil {
				require.ErrorIs(t, err, errUnknownWorkflow)
				return err
			}
			select {
			case <-ctx.Done():
				t.Fatalf("version %q still answered from the cache", version)
			case <-time.After(5 * time.Millisecond): // polling, bounded by ctx
			}
		}
	}
	require.NoError(t, kv.Purge(ctx, layout.DefinitionKey(def.Name, "v1")))
	require.ErrorContains(t, gone("v1"), `version "v1"`)
	m, err := d.machine(ctx, def.Name, "v2")
	require.NoError(t, err, "the other version stays")
	require.Equal(t, "v2", m.Definition().Version)

	require.NoError(t, kv.Purge(ctx, layout.LatestDefinitionKey(def.Name)))
	require.NoError(t, kv.Delete(ctx, layout.DefinitionKey(def.Name, "v2")))
	require.ErrorContains(t, gone(""), "no worker has registered it")
	require.ErrorContains(t, gone("v2"), `version "v2"`)
}
