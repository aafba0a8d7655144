package embedded_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/embedded"
)

// TestStoreDirLocked starts two servers on one data directory: the second
// is refused with a message naming the directory and its lock file, and
// starts once the first has stopped.
func TestStoreDirLocked(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data") // Start creates it
	first, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
	require.NoError(t, err)
	t.Cleanup(first.Stop)

	second, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
	require.Nil(t, second)
	require.ErrorIs(t, err, embedded.ErrStoreDirInUse)
	lock := filepath.Join(dir, "cano.lock")
	require.EqualError(t, err, "embedded: data directory "+dir+" is in use by another server (pid "+
		strconv.Itoa(os.Getpid())+"): its lock file "+lock+" is held; "+
		"stop that server first, or give this one its own directory (-data)")
	var inUse *embedded.StoreDirInUseError
	require.ErrorAs(t, err, &inUse)
	require.Equal(t, dir, inUse.Dir)

	// Another directory is fine meanwhile.
	other, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Port: -1})
	require.NoError(t, err)
	other.Stop()

	first.Stop()
	first.Stop() // twice is safe
	again, err := embedded.Start(embedded.Config{StoreDir: dir, Port: -1})
	require.NoError(t, err)
	again.Stop()
}
