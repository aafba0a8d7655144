package provision_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/provisioning"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

func TestEnsureIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		_, js := s.Connect(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- provision.Ensure(ctx, js, provision.Config{})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, js := s.Connect(t)
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{}), "second run")

	n := protocol.MustNames("")
	for _, sc := range provision.Streams(provision.Config{}) {
		st, err := js.Stream(ctx, sc.Name)
		require.NoError(t, err, sc.Name)
		require.Equal(t, sc.Retention, st.CachedInfo().Config.Retention)
	}
	for _, bc := range provision.Buckets(provision.Config{}) {
		_, err := js.KeyValue(ctx, bc.Bucket)
		require.NoError(t, err, bc.Bucket)
	}
	_, err := js.Stream(ctx, layout.TasksStream(n))
	require.NoError(t, err)
}

// TestEnsureUpgradesTasksStream: a tasks stream provisioned before the
// anchor (one subject, no per-message TTLs) is updated in place.
func TestEnsureUpgradesTasksStream(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := s.Connect(t)
	n := protocol.MustNames("")
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: layout.TasksStream(n), Subjects: []string{n.TaskWildcard()},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	_, err = js.Publish(ctx, n.TaskSubject("default", "noop"), []byte("a command queued before the upgrade"))
	require.NoError(t, err)
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{}))
	st, err := js.Stream(ctx, layout.TasksStream(n))
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	require.Equal(t, []string{n.TaskWildcard(), layout.TasksAnchorSubject(n)}, cfg.Subjects)
	require.True(t, cfg.AllowMsgTTL)
	require.Equal(t, uint64(1), st.CachedInfo().State.Msgs, "the queued command is kept")
}

func TestEnsureImmutableSettingNamed(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := s.Connect(t)
	n := protocol.MustNames("")
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: layout.TasksStream(n), Subjects: []string{n.TaskWildcard()}, Retention: jetstream.LimitsPolicy,
	})
	require.NoError(t, err)
	err = provision.Ensure(ctx, js, provision.Config{})
	require.Error(t, err)
	require.True(t, errors.Is(err, provision.ErrImmutableSetting), err.Error())
	var se *provision.SettingError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "retention", se.Setting)
	require.Contains(t, err.Error(), "nats stream rm "+layout.TasksStream(n))
}

func TestTwoPrefixesShareOneServer(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := s.Connect(t)
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{Prefix: "alpha"}))
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{Prefix: "beta"}))
	_, err := js.Stream(ctx, "ALPHA_TASKS")
	require.NoError(t, err)
	_, err = js.Stream(ctx, "BETA_TASKS")
	require.NoError(t, err)
}

func TestTimersStreamAcceptsSchedules(t *testing.T) {
	t.Parallel()
	s := natstest.StartProvisioned(t, provision.Config{})
	_, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := protocol.MustNames("")
	// Fires are stored by the server itself (no core publish): read them
	// through a consumer, as the coordinator does.
	cons, err := js.CreateConsumer(ctx, layout.TimersStream(n), jetstream.ConsumerConfig{
		FilterSubject: n.TimerFireWildcard(), AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)
	msg := nats.NewMsg(n.TimerAtSubject("r1", "deadline"))
	msg.Data = []byte("fire")
	msg.Header.Set("Nats-Schedule", "@at "+time.Now().Add(200*time.Millisecond).UTC().Format(time.RFC3339Nano))
	msg.Header.Set("Nats-Schedule-Target", n.TimerFireSubject("r1", "deadline"))
	_, err = js.PublishMsg(ctx, msg)
	require.NoError(t, err)
	got, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	require.NoError(t, err)
	require.Equal(t, "fire", string(got.Data()))
	require.Equal(t, n.TimerFireSubject("r1", "deadline"), got.Subject())
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"immutable setting", &provision.SettingError{Stream: "S", Setting: "retention"}, true},
		{"wrapped immutable setting", fmt.Errorf("start: %w", &provision.SettingError{}), true},
		{"invalid config", provision.ErrInvalidConfig, true},
		{"timeout", context.DeadlineExceeded, false},
		{"no responders", nats.ErrNoResponders, false},
		{"other", errors.New("provision: stream KV_cano_leader: context deadline exceeded"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, provisioning.Permanent(tc.err))
		})
	}
}

func TestEnsureInvalidConfigIsPermanent(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, cfg := range []provision.Config{{Prefix: "bad prefix"}, {Replicas: 2}, {LeaderTTL: time.Millisecond}} {
		err := provisioning.Wait(ctx, nil, js, cfg)
		require.ErrorIs(t, err, provision.ErrInvalidConfig)
		require.True(t, provisioning.Permanent(err))
	}
}

// TestWatchReprovisions deletes a stream under a watched connection and
// forces a reconnect: the stream is back.
func TestWatchReprovisions(t *testing.T) {
	t.Parallel()
	cfg := provision.Config{EventCapture: true}
	s := natstest.StartProvisioned(t, cfg)
	nc, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stop := provisioning.Watch(nc, js, cfg, nil)
	defer stop()
	n := protocol.MustNames("")
	require.NoError(t, js.DeleteStream(ctx, layout.EventsStream(n)))
	require.NoError(t, nc.ForceReconnect())
	require.Eventually(t, func() bool {
		_, err := js.Stream(ctx, layout.EventsStream(n))
		return err == nil
	}, 30*time.Second, 20*time.Millisecond)
	stop()
	stop() // twice is safe
}

// TestDuplicateWindows checks each stream's window, and that Ensure
// shortens the window of a stream created with the old 2-minute one in
// place.
func TestDuplicateWindows(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{DuplicateWindow: 2 * time.Minute}))
	n := protocol.MustNames("")
	st, err := js.Stream(ctx, layout.TasksStream(n))
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, st.CachedInfo().Config.Duplicates)

	require.NoError(t, provision.Ensure(ctx, js, provision.Config{EventCapture: true}))
	want := map[string]time.Duration{layout.TriggersStream(n): 30 * time.Second, layout.TasksStream(n): 45 * time.Second, layout.ResultsStream(n): 45 * time.Second, layout.ControlStream(n): 45 * time.Second, layout.TimersStream(n): 45 * time.Second, layout.EventsStream(n): 45 * time.Second, layout.DLQStream(n): 45 * time.Second}
	require.Len(t, provision.Streams(provision.Config{EventCapture: true}), len(want))
	for name, d := range want {
		st, err := js.Stream(ctx, name)
		require.NoError(t, err, name)
		require.Equal(t, d, st.CachedInfo().Config.Duplicates, name)
		require.Less(t, d, 2*time.Minute, name)
	}
	// An id re-published inside the window is still dropped.
	msg := nats.NewMsg(n.TaskSubject("default", "k"))
	msg.Header.Set(jetstream.MsgIDHeader, "r1/1/-1")
	_, err = js.PublishMsg(ctx, msg)
	require.NoError(t, err)
	ack, err := js.PublishMsg(ctx, msg)
	require.NoError(t, err)
	require.True(t, ack.Duplicate)

	err = provision.Ensure(ctx, js, provision.Config{DuplicateWindow: -time.Second})
	require.ErrorIs(t, err, provision.ErrInvalidConfig)
}

// TestEventCapture checks that the events capture stream is made only
// when asked for, and that Ensure without it leaves a stream an older
// deployment made (or another process configured) as it is.
func TestEventCapture(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := protocol.MustNames("")
	for _, sc := range provision.Streams(provision.Config{}) {
		require.NotEqual(t, layout.EventsStream(n), sc.Name, "capture off by default")
	}

	require.NoError(t, provision.Ensure(ctx, js, provision.Config{}))
	_, err := js.Stream(ctx, layout.EventsStream(n))
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "no capture stream unless configured")

	require.NoError(t, provision.Ensure(ctx, js, provision.Config{EventCapture: true, EventsMaxAge: 2 * time.Hour}))
	st, err := js.Stream(ctx, layout.EventsStream(n))
	require.NoError(t, err)
	require.Equal(t, []string{n.EventWildcard()}, st.CachedInfo().Config.Subjects)
	require.Equal(t, jetstream.MemoryStorage, st.CachedInfo().Config.Storage)

	// A process without capture (a worker, an older config) leaves it be.
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{}))
	st, err = js.Stream(ctx, layout.EventsStream(n))
	require.NoError(t, err, "Ensure without capture must not delete the stream")
	require.Equal(t, 2*time.Hour, st.CachedInfo().Config.MaxAge, "nor change it")
}

// TestDLQBounded: the dead-letter stream is bounded in bytes (256 MiB by
// default), dropping its oldest letters past the bound, so a flood of bad
// input cannot fill the server's store; an existing stream gets the bound
// on the next Ensure, and -1 lifts it.
func TestDLQBounded(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := protocol.MustNames("")
	dlqConfig := func() jetstream.StreamConfig {
		st, err := js.Stream(ctx, layout.DLQStream(n))
		require.NoError(t, err)
		return st.CachedInfo().Config
	}

	require.NoError(t, provision.Ensure(ctx, js, provision.Config{}))
	require.Equal(t, int64(provision.DLQMaxBytesDefault), dlqConfig().MaxBytes)

	require.NoError(t, provision.Ensure(ctx, js, provision.Config{DLQMaxBytes: 8 << 10}))
	require.Equal(t, int64(8<<10), dlqConfig().MaxBytes)
	letter := make([]byte, 1<<10)
	for i := range 20 {
		_, err := js.Publish(ctx, n.DLQSubject("trigger"), letter, jetstream.WithMsgID(fmt.Sprintf("dlq:test:%d", i)))
		require.NoError(t, err, "letter %d: the bound drops old letters, it does not refuse new ones", i)
	}
	st, err := js.Stream(ctx, layout.DLQStream(n))
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.LessOrEqual(t, info.State.Bytes, uint64(8<<10))
	require.Equal(t, uint64(20), info.State.LastSeq, "the newest letter is kept")
	require.Greater(t, info.State.FirstSeq, uint64(1), "the oldest letters went")

	require.NoError(t, provision.Ensure(ctx, js, provision.Config{DLQMaxBytes: -1}))
	require.Equal(t, int64(-1), dlqConfig().MaxBytes)

	err = provision.Ensure(ctx, js, provision.Config{DLQMaxBytes: -2})
	require.ErrorIs(t, err, provision.ErrInvalidConfig)
	require.ErrorContains(t, err, "DLQMaxBytes")
}

// TestCreateOnly: CreateOnly creates what is missing, concurrently with
// itself, and leaves an existing stream or bucket as it is.
func TestCreateOnly(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := protocol.MustNames("")

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		_, js := s.Connect(t)
		wg.Go(func() { errs <- provision.Ensure(ctx, js, provision.Config{CreateOnly: true}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	_, js := s.Connect(t)
	for _, sc := range provision.Streams(provision.Config{}) {
		_, err := js.Stream(ctx, sc.Name)
		require.NoError(t, err, sc.Name)
	}
	for _, bc := range provision.Buckets(provision.Config{}) {
		_, err := js.KeyValue(ctx, bc.Bucket)
		require.NoError(t, err, bc.Bucket)
	}

	// The owner's settings, then CreateOnly with the defaults: kept.
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{LeaderTTL: 20 * time.Second, DLQMaxBytes: 1 << 20, RunsMaxAge: 48 * time.Hour}))
	require.NoError(t, js.DeleteStream(ctx, layout.ControlStream(n)))
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{CreateOnly: true}))
	_, err := js.Stream(ctx, layout.ControlStream(n))
	require.NoError(t, err, "a missing stream is created")
	dlq, err := js.Stream(ctx, layout.DLQStream(n))
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), dlq.CachedInfo().Config.MaxBytes)
	for bucket, ttl := range map[string]time.Duration{layout.LeaderBucket(n): 20 * time.Second, layout.RunsBucket(n): 48 * time.Hour} {
		kv, err := js.KeyValue(ctx, bucket)
		require.NoError(t, err)
		st, err := kv.Status(ctx)
		require.NoError(t, err)
		require.Equal(t, ttl, st.TTL(), bucket)
	}
}
