package coordinator_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// registerVersion registers demo.OneTask as version and makes it the
// latest, as a worker does.
func registerVersion(ctx context.Context, js jetstream.JetStream, version string) error {
	def, err := demo.OneTask().Definition()
	if err != nil {
		return err
	}
	def.Version = version
	data, err := wirecodec.Encode(def)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, layout.DefinitionsBucket(protocol.MustNames("")))
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, layout.DefinitionKey(def.Name, version), data); err != nil {
		return err
	}
	_, err = kv.PutString(ctx, layout.LatestDefinitionKey(def.Name), version)
	return err
}

// TestLatestDefinitionAfterServerRestart: after the server restarts, the
// coordinator's watch of the definitions bucket is behind (its consumer was
// lost with the server). A version registered after the restart takes over:
// the coordinator reads latest.<name> from the bucket when its cached latest
// has not been verified since the connection dropped, and its recreated
// watch delivers the registration. A trigger sent within the watch's
// delivery lag (well under a millisecond, more under load) of the
// registration may still run the version before, as on any coordinator: the
// test polls for v2 (TestLatestVerifiedPerGeneration checks the
// verification itself without timing).
func TestLatestDefinitionAfterServerRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	scfg := embedded.Config{StoreDir: t.TempDir(), Port: port}
	srv, err := embedded.Start(scfg)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop() })

	connect := func() (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		return nc, js
	}
	nc, js := connect()
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{}))
	require.NoError(t, registerVersion(ctx, js, "v1"))

	conc, _ := connect() // the coordinator's own connection
	co, err := coordinator.New(conc, coordinator.Config{Shards: 2, StallCheckInterval: -1})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		require.NoError(t, co.Stop(sctx))
	})
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	version := func(runID string) string {
		_, err := cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{RunID: runID})
		require.NoError(t, err)
		rec, err := cl.Get(ctx, runID)
		require.NoError(t, err)
		return rec.Version
	}
	require.Equal(t, "v1", version("r-before"))

	reconnected := conc.StatusChanged(nats.CONNECTED)
	srv.Stop()
	srv, err = embedded.Start(scfg)
	require.NoError(t, err)
	natstest.Recv(t, reconnected, 30*time.Second)
	natstest.WaitFor(t, 30*time.Second, "the test's connection back", nc.IsConnected)
	natstest.WaitFor(t, 30*time.Second, "v2 registered", func() bool {
		return registerVersion(ctx, js, "v2") == nil
	})
	n := 0
	natstest.WaitFor(t, 30*time.Second, "a trigger runs v2", func() bool {
		n++
		return version(fmt.Sprintf("r-after-%d", n)) == "v2"
	})
	require.Equal(t, "v2", version("r-after"), "v2 stays the latest")
}
