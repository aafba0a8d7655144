package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

// refuseResults makes the results stream refuse every publish (its maximum
// message size drops below any result) while the stream and the
// coordinators' consumer stay; the returned func restores it.
func refuseResults(t *testing.T, js jetstream.JetStream, nc *nats.Conn) (restore func()) {
	t.Helper()
	ctx := awaitCtx(t)
	names := protocol.MustNames("")
	st, err := js.Stream(ctx, names.ResultsStream())
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	saved := info.Config
	blocked := saved
	blocked.MaxMsgSize = 1
	_, err = js.UpdateStream(ctx, blocked)
	require.NoError(t, err)
	// The stream refuses a result now (were it taken, the coordinator
	// would dead-letter this non-result).
	_, err = js.Publish(ctx, names.ResultSubject("probe"), []byte("probe"))
	require.Error(t, err, "the results stream still takes results")
	return func() {
		_, err := js.UpdateStream(context.Background(), saved)
		require.NoError(t, err)
	}
}

// logSink collects a worker's log lines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.buf.String(), substr)
}

// Tasks that finish while the broker refuses their results keep their
// commands (heartbeating, for longer than the ack wait) and retry until the
// broker takes the results: the runs complete, with one attempt each,
// though their policy allows no retry; the outage is logged once.
func TestBrokerOutageCostsNoAttempt(t *testing.T) {
	t.Parallel()
	const ackWait = time.Second
	const runs = 3
	release := make(chan struct{})
	task := newScript(func(ctx context.Context, _ *fsm.TaskContext) (fsm.Result, error) {
		select {
		case <-release:
			return fsm.NextWith("done", "ok"), nil
		case <-ctx.Done():
			return fsm.Result{}, ctx.Err()
		}
	})
	sink := &logSink{}
	b := setup(t, worker.Config{AckWait: ackWait, Logger: slog.New(slog.NewTextHandler(sink, nil))},
		oneTask("outage", task, fsm.TaskConfig{Retry: fsm.RetryNone()}))
	beats := heartbeats(t, b.nc)
	ctx := awaitCtx(t)
	ids := make([]string, runs)
	for i := range ids {
		ids[i] = "r" + nuid.Next()
		_, err := b.client.Trigger(ctx, "outage", &client.TriggerOpts{RunID: ids[i], NoWait: true})
		require.NoError(t, err)
	}
	for _, id := range ids {
		natstest.WaitFor(t, 30*time.Second, "attempt started", func() bool { return len(b.log.starts(id)) == 1 })
	}
	restore := refuseResults(t, b.js, b.nc)
	close(release)
	for _, id := range ids {
		natstest.WaitFor(t, 30*time.Second, "attempt ended", func() bool { return len(b.log.ends(id)) == 1 })
	}
	refusedAt := time.Now()
	// The outage lasts two ack waits beyond the tasks' end: six rounds of
	// heartbeats for the commands held while their results are refused
	// (checked after the runs, which say more if it fails).
	beaten, enough := 0, time.After(20*time.Second)
wait:
	for beaten < 6*runs {
		select {
		case <-beats:
			beaten++
		case <-enough:
			break wait
		}
	}
	outage := time.Since(refusedAt)
	restore()
	for _, id := range ids {
		out, err := b.client.Await(ctx, id)
		require.NoError(t, err, "run %s", id)
		require.Equal(t, protocol.RunCompleted, out.Status)
		var got string
		require.NoError(t, out.Decode(&got))
		require.Equal(t, "ok", got)
		require.Len(t, b.log.starts(id), 1, "run %s: the outage cost an attempt", id)
	}
	require.Equal(t, 6*runs, beaten, "the commands were not held through the outage")
	require.Equal(t, 1, sink.count("the broker refuses finished tasks' outcomes"), "outage start logged once")
	natstest.WaitFor(t, 10*time.Second, "outage end logged", func() bool {
		return sink.count("the broker takes task outcomes again") == 1
	})
	t.Logf("%d runs finished their task while the results stream refused results for %s (ack wait %s): all completed, one attempt each",
		runs, outage.Round(time.Millisecond), ackWait)
}

// A command whose outcome the broker refuses for good is handed back with
// growing delays and, past the bound, ends in the dead-letter stream with
// its reason; the task itself ran once.
func TestUndeliverableOutcomeIsDeadLettered(t *testing.T) {
	t.Parallel()
	ok := newScript(func(context.Context, *fsm.TaskContext) (fsm.Result, error) { return fsm.Next("done"), nil })
	b := setup(t, worker.Config{AckWait: time.Second, ResultRetry: 100 * time.Millisecond},
		oneTask("undeliverable", ok, fsm.TaskConfig{Retry: fsm.RetryNone()}))
	_ = refuseResults(t, b.js, b.nc)
	ctx := awaitCtx(t)
	runID := "r" + nuid.Next()
	_, err := b.client.Trigger(ctx, "undeliverable", &client.TriggerOpts{RunID: runID, NoWait: true})
	require.NoError(t, err)
	names := protocol.MustNames("")
	subject := names.TaskSubject(fsm.QueueDefault, scripted{}.Kind())
	var letter client.DeadLetterEntry
	natstest.WaitFor(t, 60*time.Second, "the command dead-lettered", func() bool {
		entries, err := b.client.DeadLetters(ctx, &client.DeadLetterFilter{Source: "task"})
		if err != nil {
			return false
		}
		for _, e := range entries {
			if e.Subject == subject {
				letter = e
				return true
			}
		}
		return false
	})
	require.Contains(t, letter.Reason, fmt.Sprintf("outcome not delivered on %d deliveries", 5))
	require.Len(t, b.log.starts(runID), 1, "only the first delivery ran the task")
	cons, err := b.js.Consumer(ctx, names.TasksStream(), names.TaskConsumer(fsm.QueueDefault, scripted{}.Kind()))
	require.NoError(t, err)
	natstest.WaitFor(t, 10*time.Second, "the command settled", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	t.Logf("dead-lettered after 5 deliveries: %s", letter.Reason)
}
