package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// TestTracingOneTracePerRun: with tracing on, a run triggered under a
// caller's span records its state spans (coordinator) and task attempt
// spans (worker) in the caller's trace, under the caller's span; a second
// run under another span is another trace; a run without a span records
// nothing.
func TestTracingOneTracePerRun(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, _ := srv.Connect(t)
	ctx := awaitCtx(t)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	reg := &fsm.Registry{}
	fsm.Register[step](reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, AckWait: 5 * time.Second, Tracing: tp,
		Workflows: []worker.Definer{fsm.New[S]("chain", SA).Register(SA, step{SB}).Register(SB, step{SC}).Register(SC, step{SDone}).Exit(SDone)}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 4, Tracing: tp})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	_, err = cl.Run(ctx, "chain", nil) // no caller span: no trace
	require.NoError(t, err)

	callers := make([]trace.SpanContext, 2)
	for i := range callers {
		cctx, span := tp.Tracer("test").Start(ctx, "caller")
		_, err := cl.Run(cctx, "chain", nil)
		require.NoError(t, err)
		span.End()
		callers[i] = span.SpanContext()
	}
	require.NotEqual(t, callers[0].TraceID(), callers[1].TraceID())

	// 2 callers + per run 4 state spans (a, b, c and the exit, done) and
	// 3 task attempts.
	natstest.WaitFor(t, 20*time.Second, "spans", func() bool { return len(exp.GetSpans()) >= 2+2*7 })
	byTrace := map[trace.TraceID][]string{}
	for _, s := range exp.GetSpans() {
		if s.Name == "caller" {
			continue
		}
		tid := s.SpanContext.TraceID()
		require.Contains(t, []trace.TraceID{callers[0].TraceID(), callers[1].TraceID()}, tid, "%s in a caller's trace", s.Name)
		caller := callers[0]
		if tid == callers[1].TraceID() {
			caller = callers[1]
		}
		require.Equal(t, caller.SpanID(), s.Parent.SpanID(), "%s under the caller's span", s.Name)
		require.False(t, s.EndTime.Before(s.StartTime), s.Name)
		byTrace[tid] = append(byTrace[tid], s.Name)
	}
	require.Len(t, byTrace, 2, "one trace per run")
	for _, names := range byTrace {
		require.ElementsMatch(t, []string{"cano.state a", "cano.state b", "cano.state c", "cano.state done",
			"cano.task step", "cano.task step", "cano.task step"}, names)
	}
}
