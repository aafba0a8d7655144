package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/worker"
)

// BenchmarkSplit runs no-op splits of 100, 1,000 and 10,000 branches joined
// with All (one coordinator, two workers, one embedded server) and reports
// the time per split and per branch. Beside each, in the same run and on
// the same server, a raw JetStream baseline: publish the same number of
// messages to a work-queue stream, consume and ack them all.
//
//	go test -run '^$' -bench BenchmarkSplit -benchtime 3x ./pkg/client/
func BenchmarkSplit(b *testing.B) {
	sizes := []int{100, 1000, 10_000}
	wfs := make([]worker.Definer, len(sizes))
	for i, n := range sizes {
		wfs[i] = noopSplit(n)
	}
	bd := setupSplit(b, wfs...)
	ctx := context.Background()
	for _, n := range sizes {
		b.Run(fmt.Sprintf("split/branches=%d", n), func(b *testing.B) {
			wf := noopSplitName(n)
			// One warm-up run loads the definition into the coordinator.
			_, err := bd.client.Run(ctx, wf, nil)
			require.NoError(b, err)
			for b.Loop() {
				out, err := bd.client.Run(ctx, wf, &client.TriggerOpts{})
				require.NoError(b, err)
				require.Equal(b, client.RunCompleted, out.Status)
			}
			reportPer(b, n)
		})
		b.Run(fmt.Sprintf("baseline/msgs=%d", n), func(b *testing.B) {
			rawRoundTrips(b, bd.js, n)
			reportPer(b, n)
		})
	}
}

func reportPer(b *testing.B, n int) {
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(per/1e6, "ms/split")
	b.ReportMetric(per/float64(n)/1e3, "µs/branch")
	b.ReportMetric(0, "ns/op")
}

// rawRoundTrips publishes n messages (the size of a task command) to a
// work-queue stream per iteration and consumes and acks all of them.
func rawRoundTrips(b *testing.B, js jetstream.JetStream, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := fmt.Sprintf("RAW_%d", n)
	subject := fmt.Sprintf("raw.%d", n)
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	require.NoError(b, err)
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 64 * 1024})
	require.NoError(b, err)
	acked := make(chan struct{}, 1024)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		acked <- struct{}{}
	}, jetstream.PullMaxMessages(256))
	require.NoError(b, err)
	defer cc.Stop()
	payload := make([]byte, 200)
	for b.Loop() {
		go func() {
			for i := 0; i < n; i++ {
				if _, err := js.PublishAsync(subject, payload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		for i := 0; i < n; i++ {
			select {
			case <-acked:
			case <-ctx.Done():
				b.Fatal("raw baseline: messages not consumed")
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
	}
}
