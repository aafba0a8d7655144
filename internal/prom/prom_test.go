package prom

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/embedded"
)

// TestRegisterShares: a second instance registering an equal collector
// gets the first one's; a clashing one is refused.
func TestRegisterShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "things_total", Help: "Things."}
	first, err := Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatal("the second registration did not get the first collector")
	}
	if _, err := Register(reg, prometheus.NewCounterVec(opts, []string{"other"})); err == nil {
		t.Fatal("a collector with other labels under the same name was accepted")
	}
}

// TestPendingScrapeDoesNotBlock: consumer counts come from a real
// JetStream server; a query that blocks past the timeout (a reconnecting
// connection holding its calls) leaves the scrape without consumer samples
// instead of holding it, and a second scrape meanwhile starts no second
// query.
func TestPendingScrapeDoesNotBlock(t *testing.T) {
	t.Parallel()
	srv, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Port: -1})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROM_TEST", Subjects: []string{"prom.test"}})
	require.NoError(t, err)
	_, err = js.CreateOrUpdateConsumer(ctx, "PROM_TEST", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	for range 3 {
		_, err = js.Publish(ctx, "prom.test", nil)
		require.NoError(t, err)
	}

	p := NewPending(js, PendingConfig{Namespace: "t", Label: "consumer", PendingHelp: "p", AckPendingHelp: "a",
		Timeout: 100 * time.Millisecond,
		Consumers: func() []Consumer {
			return []Consumer{{Stream: "PROM_TEST", Name: "c", Label: "c"}, {Stream: "PROM_TEST", Name: "absent", Label: "absent"}}
		}})
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(p))
	gather := func() map[string]float64 {
		t.Helper()
		done := make(chan map[string]float64, 1)
		go func() {
			mfs, err := reg.Gather()
			if err != nil {
				t.Error(err)
			}
			out := map[string]float64{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					out[mf.GetName()+"/"+m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
				}
			}
			done <- out
		}()
		select {
		case out := <-done:
			return out
		case <-time.After(30 * time.Second): // a guard against a hang, not a timing goal
			t.Fatal("the scrape did not return")
			return nil
		}
	}
	// The server counts a consumer's pending messages as its stream signals
	// the consumer, a moment after each publish's acknowledgement (and a
	// scrape under load may pass its 100 ms): poll until the count is there.
	want := map[string]float64{"t_consumer_pending/c": 3, "t_consumer_ack_pending/c": 0}
	var got map[string]float64
	for deadline := time.Now().Add(30 * time.Second); ; {
		if got = gather(); len(got) == len(want) && got["t_consumer_pending/c"] == 3 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the consumer's counts never came: %v", got)
		select {
		case <-time.After(10 * time.Millisecond):
		case <-t.Context().Done():
		}
	}
	require.Equal(t, want, got)

	real := p.query
	release := make(chan struct{})
	var calls atomic.Int32
	p.query = func(ctx context.Context, c Consumer) (uint64, uint64, error) {
		calls.Add(1)
		<-release // ignores its context
		return real(ctx, c)
	}
	require.Empty(t, gather())
	require.Empty(t, gather())
	require.Equal(t, int32(1), calls.Load(), "a second scrape started a second query while the first was blocked")
	close(release) // the wrapper now passes through
	deadline := time.Now().Add(30 * time.Second)
	for len(gather()) == 0 {
		require.True(t, time.Now().Before(deadline), "no samples after the blocked query returned")
	}
	require.Equal(t, map[string]float64{"t_consumer_pending/c": 3, "t_consumer_ack_pending/c": 0}, gather())
}
