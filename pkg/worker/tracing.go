package worker

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cano-nats/cano/internal/tracectx"
	"github.com/cano-nats/cano/pkg/protocol"
)

// traceAttempt starts the span of one task attempt (Config.Tracing), a
// child of the trace context the command carries, and returns ctx with it
// (the task's own spans nest under it) and the function that ends it with
// the attempt's error. Without tracing or trace context it changes nothing.
func (w *Worker) traceAttempt(ctx context.Context, msg jetstream.Msg, cmd *protocol.TaskCommand, attempt int) (context.Context, func(error)) {
	h := msg.Headers()
	if w.cfg.Tracing == nil || len(h[tracectx.HeaderTraceParent]) == 0 {
		return ctx, func(error) {}
	}
	ctx, span := tracectx.Tracer(w.cfg.Tracing).Start(tracectx.Extract(ctx, h), "cano.task "+cmd.Task.Kind,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("cano.run_id", cmd.RunID),
			attribute.String("cano.workflow", cmd.Workflow),
			attribute.String("cano.state", cmd.State),
			attribute.Int64("cano.step", int64(cmd.Step)),
			attribute.Int("cano.branch", int(cmd.Branch)),
			attribute.Int("cano.attempt", attempt),
			attribute.String("cano.worker_id", w.cfg.ID),
		))
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
