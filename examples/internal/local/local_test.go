package local_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/cli"
)

// TestConnectPacesReconnectsAsTheCommands: the examples' connections
// reconnect as cmd/coordinator's and cmd/worker's do (the values are
// repeated in local, which may not import internal/wire).
func TestConnectPacesReconnectsAsTheCommands(t *testing.T) {
	t.Parallel()
	require.Equal(t, cli.ReconnectWaitDefault, local.ReconnectWait)
	require.Equal(t, cli.ReconnectJitterDefault, local.ReconnectJitter)
	require.Equal(t, cli.ReconnectJitterTLSDefault, local.ReconnectJitterTLS)

	srv := natstest.Start(t)
	nc, err := local.Connect(srv.URL, "cano-example-test")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	require.Equal(t, "cano-example-test", nc.Opts.Name)
	require.Equal(t, -1, nc.Opts.MaxReconnect)
	require.Equal(t, local.ReconnectWait, nc.Opts.ReconnectWait)
	require.Equal(t, local.ReconnectJitter, nc.Opts.ReconnectJitter)
	require.Equal(t, local.ReconnectJitterTLS, nc.Opts.ReconnectJitterTLS)
}
