package natskv_test

import (
	"context"
	"errors"
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

	"github.com/cano-nats/cano/internal/kvpurge"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/natskv"
)

// Environment of the helper process started by TestAppendAcrossProcesses.
const (
	helperURLEnv    = "KVSTORE_HELPER_URL"
	helperBucketEnv = "KVSTORE_HELPER_BUCKET"
	helperIDEnv     = "KVSTORE_HELPER_ID"
	helperModeEnv   = "KVSTORE_HELPER_MODE" // "append" or "fetch"
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
	s := env.newStore(t, natskv.Config{})
	bucket := "store_" + strconv.FormatInt(env.n.Load(), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(),
		helperURLEnv+"="+env.srv.URL,
		helperBucketEnv+"="+bucket,
		helperIDEnv+"=1",
		helperModeEnv+"=append",
	)
	var out natstest.LogBuffer
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
	s, err := natskv.New(ctx, js, natskv.Config{Bucket: os.Getenv(helperBucketEnv)})
	require.NoError(t, err)
	if os.Getenv(helperModeEnv) == "fetch" {
		require.NoError(t, fetchBranch(ctx, s, id))
		return
	}
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

// TestSplitBranchesAcrossProcesses is the seed README's example: three
// parallel fetch branches of one run, two in this process and one in
// another OS process, each write source_N in the run's scope; the next
// state reads all three through a new store.
func TestSplitBranchesAcrossProcesses(t *testing.T) {
	t.Parallel()
	env := newKVEnv(t)
	s := env.newStore(t, natskv.Config{})
	bucket := "store_" + strconv.FormatInt(env.n.Load(), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(),
		helperURLEnv+"="+env.srv.URL,
		helperBucketEnv+"="+bucket,
		helperIDEnv+"=2",
		helperModeEnv+"=fetch",
	)
	var out natstest.LogBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []int{1, 3} {
		wg.Go(func() { errs[i] = fetchBranch(ctx, s, n) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.NoError(t, cmd.Wait(), "helper process:\n%s", out.String())
	require.Contains(t, out.String(), "--- PASS: TestHelperProcess", "the helper ran:\n%s", out.String())

	// The next state, possibly on another worker, reads through its own store.
	next, err := natskv.New(ctx, env.js, natskv.Config{Bucket: bucket})
	require.NoError(t, err)
	run := kvstore.Scoped(next, kvstore.RunScope("fetch-run"))
	keys, err := run.Keys(ctx, "source_")
	require.NoError(t, err)
	require.Equal(t, []string{"source_1", "source_2", "source_3"}, keys)
	for n := 1; n <= 3; n++ {
		got, err := kvstore.GetAs[fetched](ctx, run, fmt.Sprintf("source_%d", n))
		require.NoError(t, err)
		require.Equal(t, fetched{Source: n, Body: fmt.Sprintf("body of source %d", n)}, got)
	}
	done, err := kvstore.GetAs[[]int](ctx, run, "branches_done")
	require.NoError(t, err)
	slices.Sort(done)
	require.Equal(t, []int{1, 2, 3}, done)

	require.NoError(t, kvpurge.PurgeRun(ctx, next, "fetch-run"))
	keys, err = run.Keys(ctx, "")
	require.NoError(t, err)
	require.Empty(t, keys)
}

type fetched struct {
	Source int    `msgpack:"source"`
	Body   string `msgpack:"body"`
}

// fetchBranch is one fetch branch's task: it writes its result in the run
// scope and records that it is done.
func fetchBranch(ctx context.Context, s kvstore.Store, n int) error {
	run := kvstore.Scoped(s, kvstore.RunScope("fetch-run"))
	v := fetched{Source: n, Body: fmt.Sprintf("body of source %d", n)}
	if err := kvstore.PutValue(ctx, run, fmt.Sprintf("source_%d", n), v); err != nil {
		return err
	}
	return kvstore.AppendValue(ctx, run, "branches_done", n)
}
