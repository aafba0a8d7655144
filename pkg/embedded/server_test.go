package embedded_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/embedded"
)

// TestStartAddrInUse starts a server on a port something else listens on:
// it is refused at once (well within ReadyTimeout), naming the address,
// and leaves its data directory free.
func TestStartAddrInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	dir := filepath.Join(t.TempDir(), "data")

	const ready = 20 * time.Second
	start := time.Now()
	srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: port, ReadyTimeout: ready})
	require.Nil(t, srv)
	require.ErrorIs(t, err, embedded.ErrAddrInUse)
	require.Contains(t, err.Error(), l.Addr().String())
	require.Less(t, time.Since(start), ready/2, "refused without waiting out ReadyTimeout")

	other, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
	require.NoError(t, err, "the data directory is not left locked")
	other.Stop()
}
