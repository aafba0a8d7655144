package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/app"
)

// TestDevModeDemoRunsTraced: with CoordinatorConfig.Tracing set, each dev
// mode demo run is a trace under its own cano.demo span, with the
// coordinator's state spans and the dev worker's task spans under it.
func TestDevModeDemoRunsTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	// The data directory is made here, before the cleanup below that stops
	// dev mode, so that its removal (a cleanup too, run in reverse order)
	// comes after the stop. Made in the goroutine, it was often removed
	// first: the server then failed to store the results of the runs in
	// flight and, taking that for an I/O error, sent no PubAck, so the
	// stop waited out its deadline.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.RunCoordinator(ctx, slog.New(slog.DiscardHandler), app.CoordinatorConfig{Dev: true, DataDir: dir,
			Listen: fmt.Sprintf("127.0.0.1:%d", port), HTTP: "off", MetricsAddr: "off", DemoEvery: 50 * time.Millisecond,
			DrainTimeout: 30 * time.Second, Tracing: tp}, 10*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "dev coordinator's stop")
		case <-time.After(60 * time.Second):
			t.Error("dev coordinator did not stop within 60s")
		}
	})

	// A demo run's trace: its cano.demo span and the 7 spans of the run
	// (the worker may end a task span just after the run completed).
	var demoSpan sdktrace.ReadOnlySpan
	natstest.WaitFor(t, 120*time.Second, "a demo run's trace", func() bool {
		perTrace := map[trace.TraceID]int{}
		spans := exp.GetSpans().Snapshots()
		for _, s := range spans {
			perTrace[s.SpanContext().TraceID()]++
		}
		for _, s := range spans {
			if s.Name() == "cano.demo" && perTrace[s.SpanContext().TraceID()] >= 1+7 {
				demoSpan = s
				return true
			}
		}
		return false
	})
	root := demoSpan.SpanContext()
	var names []string
	var runID string
	for _, s := range exp.GetSpans().Snapshots() {
		if s.SpanContext().TraceID() != root.TraceID() || s.Name() == "cano.demo" {
			continue
		}
		require.Equal(t, root.SpanID(), s.Parent().SpanID(), "%s under the demo span", s.Name())
		for _, kv := range s.Attributes() {
			if kv.Key == "cano.run_id" {
				require.True(t, runID == "" || runID == kv.Value.AsString(), "one run per trace")
				runID = kv.Value.AsString()
			}
		}
		names = append(names, s.Name())
	}
	require.False(t, demoSpan.Parent().IsValid(), "the demo span is a root")
	require.Equal(t, trace.SpanKindInternal, demoSpan.SpanKind())
	require.ElementsMatch(t, []string{"cano.state start", "cano.state aggregate", "cano.state complete",
		"cano.task fetch_source", "cano.task fetch_source", "cano.task fetch_source", "cano.task aggregate_sources"}, names)
}
