package kvstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/kvstore"
)

// Environment of the helper process started by TestAppendAcrossProcesses.
const (
	helperURLEnv    = "KVSTORE_HELPER_URL"
	helperBucketEnv = "KVSTORE_HELPER_BUCKET"
	helperIDEnv     = "KVSTORE_HELPER_ID"
)

const (
	appendProcesses  = 2
	appendGoroutines = 8
	appendsEach      = 1000
	appendKey        = "run.r1.items"
	readyKey         = "run.r1.ready"
)

// TestAppendAcrossProcesses appends from this process and from a second OS
// process (this test binary, re-executed to run TestHelperProcess), 8
// goroutines × 1,000 Appends each, to one key, and checks that exactly the
// 16,000 items arrive.
func TestAppendAcrossProcesses(t *testing.T) {
	t.Parallel()
	env := newKVEnv(t)
	s := env.newStore(t, kvstore.Config{})
	bucket := "store_" + strconv.FormatInt(env.n.Load(), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(),
		helperURLEnv+"="+env.srv.URL,
		helperBucketEnv+"="+bucket,
		helperIDEnv+"=1",
	)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Start appending when the helper is ready, so the processes overlap.
	ready, err := s.Watch(ctx, readyKey)
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	select {
	case <-ready:
	case <-ctx.Done():
		require.FailNow(t, "the helper process did not get ready", "%s", out.String())
	}

	start := time.Now()
	require.NoError(t, appendMany(ctx, s, 0))
	t.Logf("parent process: %d appends in %s", appendGoroutines*appendsEach, time.Since(start))
	require.NoError(t, cmd.Wait(), "helper process:\n%s", out.String())
	require.Contains(t, out.String(), "--- PASS: TestHelperProcess", "the helper ran:\n%s", out.String())

	got, err := kvstore.GetAs[[]int](ctx, s, appendKey)
	require.NoError(t, err)
	require.Len(t, got, appendProcesses*appendGoroutines*appendsEach)
	var want []int
	for p := range appendProcesses {
		for g := range appendGoroutines {
			for i := range appendsEach {
				want = append(want, item(p, g, i))
			}
		}
	}
	slices.Sort(got)
	require.Equal(t, want, got, "every item exactly once")
}

// TestHelperProcess is the second process of TestAppendAcrossProcesses; it
// is skipped in a normal test run.
func TestHelperProcess(t *testing.T) {
	url := os.Getenv(helperURLEnv)
	if url == "" {
		t.Skip("helper process of TestAppendAcrossProcesses")
	}
	id, err := strconv.Atoi(os.Getenv(helperIDEnv))
	require.NoError(t, err)
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := kvstore.NewKV(ctx, js, kvstore.Config{Bucket: os.Getenv(helperBucketEnv)})
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, readyKey, nil))
	start := time.Now()
	require.NoError(t, appendMany(ctx, s, id))
	t.Logf("helper process: %d appends in %s", appendGoroutines*appendsEach, time.Since(start))
}

// item is unique per process, goroutine and index, and small (3 bytes of
// msgpack), so the array stays small.
func item(process, goroutine, i int) int {
	return (process*appendGoroutines+goroutine)*appendsEach + i
}

// appendMany runs the appends of one process.
func appendMany(ctx context.Context, s kvstore.Store, process int) error {
	var wg sync.WaitGroup
	errs := make([]error, appendGoroutines)
	for g := range appendGoroutines {
		wg.Go(func() {
			for i := range appendsEach {
				if err := kvstore.AppendValue(ctx, s, appendKey, item(process, g, i)); err != nil {
					errs[g] = fmt.Errorf("process %d goroutine %d append %d: %w", process, g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncBuffer collects a child process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
