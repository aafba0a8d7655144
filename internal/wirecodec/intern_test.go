package wirecodec

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestInternSharesNames(t *testing.T) {
	t.Parallel()
	a := intern([]byte("intern-test-workflow"))
	b := intern([]byte("intern-test-workflow"))
	require.Equal(t, "intern-test-workflow", b)
	require.Same(t, unsafe.StringData(a), unsafe.StringData(b), "a name decoded twice shares one string")
	require.Empty(t, intern(nil))
	long := make([]byte, internMaxLen+1)
	for i := range long {
		long[i] = 'x'
	}
	require.Equal(t, string(long), intern(long), "a long string is returned, not kept")
	// Many names over the table's slots: each still reads back as itself.
	for i := range 3 * internSlots {
		p := []byte{'n', byte(i), byte(i >> 8), byte(i >> 16)}
		require.Equal(t, string(p), intern(p))
	}
}

func TestInternAllocatesOnceForARecurringName(t *testing.T) {
	p := []byte("intern-test-state")
	_ = intern(p)
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = intern(p) }))
}
