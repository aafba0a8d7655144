package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
)

// BenchmarkOneTaskRuns triggers b.N one-task... (chain: 3 tasks) runs and
// waits for every completion event.
func BenchmarkChainRuns(b *testing.B) {
	bd := setupB(b)
	done := make(chan struct{}, 1024)
	sub, err := bd.nc.Subscribe("cano.event.chain.*.completed", func(*nats.Msg) { done <- struct{}{} })
	require.NoError(b, err)
	defer func() { _ = sub.Unsubscribe() }()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; i++ {
			if _, err := bd.client.Trigger(ctx, "chain", &client.TriggerOpts{NoWait: true}); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		<-done
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}
