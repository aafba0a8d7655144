// Package tracectx carries W3C trace context (traceparent, tracestate) in
// NATS headers, so a run's spans share the trace of the caller that
// triggered it: client → trigger → coordinator → task command → worker →
// task result → coordinator → next command, and so on.
package tracectx

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The W3C trace context headers, as the propagator names them (NATS
// headers are case-sensitive: every process uses these exact keys).
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

var w3c = propagation.TraceContext{}

// carrier adapts a nats.Header to the propagator.
type carrier nats.Header

func (c carrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c carrier) Set(key, value string) { c[key] = []string{value} }
func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the span context of ctx into h; nothing when ctx holds no
// valid span context. h must not be nil.
func Inject(ctx context.Context, h nats.Header) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		w3c.Inject(ctx, carrier(h))
	}
}

// Extract returns ctx with the remote span context carried in h, or ctx
// unchanged when h carries none.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h[HeaderTraceParent]) == 0 {
		return ctx
	}
	return w3c.Extract(ctx, carrier(h))
}

// Copy copies the trace context headers of src (if any) into dst, which
// must not be nil.
func Copy(dst, src nats.Header) {
	if v := src[HeaderTraceParent]; len(v) > 0 {
		dst[HeaderTraceParent] = v
		if s := src[HeaderTraceState]; len(s) > 0 {
			dst[HeaderTraceState] = s
		}
	}
}

// Tracer returns tp's tracer for Cano, or a no-op tracer when tp is nil
// (tracing off, the default).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return tp.Tracer("github.com/cano-nats/cano")
}
