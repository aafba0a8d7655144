package coordinator

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cano-nats/cano/internal/tracectx"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Tracing (Config.Tracing). The W3C trace context a trigger carries (set by
// client.Trigger from the caller's context) is copied onto every task
// command of the run; workers copy it onto their results, which carry it
// back here for the next commands. So every span of a run is in the
// caller's trace, under the caller's span:
//
//	cano.state <state>   one per step the run left, recorded here from the
//	                     run history (entered → left), with its outcome
//	cano.task <kind>     one per task attempt, recorded by the worker
//
// Inputs without trace context (a trigger from the nats CLI, a durable
// timer, a re-published command) start no trace of their own.

// traceSteps records a span for each step of rec left by the transition
// just written, under the trace context in h.
func (c *Coordinator) traceSteps(h nats.Header, rec *protocol.RunRecord) {
	if c.cfg.Tracing == nil || len(h[tracectx.HeaderTraceParent]) == 0 {
		return
	}
	ctx := tracectx.Extract(context.Background(), h)
	tracer := tracectx.Tracer(c.cfg.Tracing)
	for i := range rec.History {
		st := &rec.History[i]
		if st.Left == 0 || st.Left != rec.UpdatedAt {
			continue
		}
		_, span := tracer.Start(ctx, "cano.state "+st.State,
			trace.WithTimestamp(time.Unix(0, st.Entered)),
			trace.WithAttributes(
				attribute.String("cano.run_id", rec.ID),
				attribute.String("cano.workflow", rec.Workflow),
				attribute.String("cano.state", st.State),
				attribute.Int64("cano.step", int64(st.Seq)),
				attribute.String("cano.outcome", string(st.Outcome)),
				attribute.Int64("cano.attempts", int64(st.Attempts)),
			))
		if st.Outcome == protocol.StepFailed {
			msg := "failed"
			if st.Error != nil {
				msg = st.Error.Message
			}
			span.SetStatus(codes.Error, msg)
		}
		span.End(trace.WithTimestamp(time.Unix(0, st.Left)))
	}
}
