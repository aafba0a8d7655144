package coordinator

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// laggingKV is a bucket whose watches deliver their initial values and
// then nothing until release is closed: a watch behind the bucket, as its
// consumer is under load (it delivers a write some time after the write
// was acknowledged).
type laggingKV struct {
	jetstream.KeyValue
	release chan struct{}
}

func (l laggingKV) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	w, err := l.KeyValue.WatchAll(ctx, opts...)
	if err != nil {
		return nil, err
	}
	lw := &laggingWatcher{KeyWatcher: w, updates: make(chan jetstream.KeyValueEntry)}
	go func() {
		defer close(lw.updates)
		initial := true
		for e := range w.Updates() {
			if !initial {
				select {
				case <-l.release:
				case <-ctx.Done():
					return
				}
			}
			if e == nil {
				initial = false
			}
			select {
			case lw.updates <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return lw, nil
}

type laggingWatcher struct {
	jetstream.KeyWatcher
	updates chan jetstream.KeyValueEntry
}

func (w *laggingWatcher) Updates() <-chan jetstream.KeyValueEntry { return w.updates }

// TestLatestAfterRegistrationWithTheWatchBehind: a trigger sent after a
// version was registered runs it, however far behind the watch of the
// definitions bucket is. (Seen in TestLatestDefinitionAfterServerRestart
// under load: the watch restarted after the reconnect had delivered its
// initial values, v1; v2 was registered; the trigger was handled before
// the watch delivered v2, and ran v1.)
func TestLatestAfterRegistrationWithTheWatchBehind(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	_, js := srv.Connect(t)
	bucket, err := js.KeyValue(ctx, layout.DefinitionsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	kv := laggingKV{KeyValue: bucket, release: make(chan struct{})}
	defer close(kv.release)
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
	latest := func(d *definitions) string {
		m, err := d.machine(ctx, demo.OneTaskName, "")
		require.NoError(t, err)
		return m.Definition().Version
	}

	register("v1")
	d := newDefinitions(js, kv, nil, slog.Default())
	runCtx, stop := context.WithCancel(ctx)
	defer func() { stop(); require.NoError(t, d.wait(ctx)) }()
	require.NoError(t, d.start(ctx, runCtx))
	require.Equal(t, "v1", latest(d))
	register("v2")
	require.Equal(t, "v2", latest(d), "registered before the trigger, still on its way through the watch")
	register("v3")
	require.Equal(t, "v3", latest(d))
}

// TestFreshnessWaitsForACheckBegunAfterTheCall: a caller that arrives while
// a check runs does not take that check's answer (it may predate a write
// the caller has seen acknowledged); it gets the next check's, begun when
// the running one ends.
func TestFreshnessWaitsForACheckBegunAfterTheCall(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	started := make(chan struct{})
	answer := make(chan uint64)
	f := &freshness{check: func(context.Context) (uint64, error) {
		started <- struct{}{}
		return <-answer, nil
	}}
	wait := func() <-chan uint64 {
		ch := make(chan uint64, 1)
		go func() {
			rev, err := f.wait(ctx)
			assert.NoError(t, err)
			ch <- rev
		}()
		return ch
	}

	first := wait()
	natstest.Recv(t, started, 10*time.Second) // the first check runs
	late := wait()
	natstest.WaitFor(t, 10*time.Second, "the late caller to wait", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.next != nil
	})
	answer <- 1
	require.Equal(t, uint64(1), natstest.Recv(t, first, 10*time.Second))
	natstest.Recv(t, started, 10*time.Second) // the second check, begun after the late caller arrived
	answer <- 2
	require.Equal(t, uint64(2), natstest.Recv(t, late, 10*time.Second))
}
