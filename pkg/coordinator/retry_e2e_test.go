package coordinator_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// TestFailingInputIsDeadLetteredAfterMaxDeliveries: a result for a run
// whose record cannot be decoded fails every time it is handled. After
// MaxDeliveries it ends in the dead-letter stream with its reason and is
// terminated: it is not delivered again. Before, it was handed back every
// 250 ms for ever. Its repeated warnings are rate-limited.
func TestFailingInputIsDeadLetteredAfterMaxDeliveries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	names := protocol.MustNames("")
	logs := &countingHandler{counts: map[string]int{}}
	co, err := coordinator.New(nc, coordinator.Config{Shards: 1, MaxDeliveries: 3, StallCheckInterval: -1,
		Logger: slog.New(logs), WarnInterval: time.Hour})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		require.NoError(t, co.Stop(sctx))
	})
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	runs, err := js.KeyValue(ctx, layout.RunsBucket(names))
	require.NoError(t, err)
	_, err = runs.Put(ctx, layout.RunKey("r-garbled"), []byte("not a run record"))
	require.NoError(t, err)
	res := &protocol.TaskResult{V: protocol.SchemaVersion, RunID: "r-garbled", Step: 0, Branch: -1,
		Status: protocol.ResultOK, Next: "done", Attempts: 1}
	data, err := wirecodec.Encode(res)
	require.NoError(t, err)
	_, err = js.Publish(ctx, names.ResultSubject("r-garbled"), data)
	require.NoError(t, err)

	var letters []client.DeadLetter
	natstest.WaitFor(t, 60*time.Second, "the result dead-lettered", func() bool {
		letters, err = cl.DeadLetters(ctx, &client.DeadLetterFilter{Source: "result"})
		return err == nil && len(letters) > 0
	})
	require.Len(t, letters, 1)
	require.Contains(t, letters[0].Reason, "given up after 3 deliveries")
	require.Contains(t, letters[0].Reason, "run record r-garbled")

	cons, err := js.Consumer(ctx, layout.ResultsStream(names), coordinator.ConsumerDefault)
	require.NoError(t, err)
	natstest.WaitFor(t, 30*time.Second, "the result terminated", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
	})
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(3), info.Delivered.Consumer, "delivered three times, then no more")
	require.Equal(t, 1, logs.count("input will be retried"), "two retries, one warning (rate-limited)")
	require.Equal(t, 1, logs.count("refused input"))
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu     sync.Mutex
	counts map[string]int // guarded by mu
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Message]++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[msg]
}
