package otelenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// FlushTimeout bounds how long Shutdown waits for the last spans to be
// exported when a process stops.
const FlushTimeout = 5 * time.Second

// Tracing is a process's tracer provider as the environment configured
// it; the zero value (and nil) is tracing off.
type Tracing struct {
	sdk *sdktrace.TracerProvider
	// Settings is what the environment asked for.
	Settings Settings
}

// Options are what Start needs besides the environment.
type Options struct {
	// Service is the service.name unless OTEL_SERVICE_NAME says otherwise
	// ("cano-coordinator", "cano-worker").
	Service string
	// Getenv reads the environment (nil: os.Getenv). The SDK and the OTLP
	// exporter read os.Getenv themselves.
	Getenv func(string) string
	// Stdout receives the console exporter's spans (nil: os.Stdout).
	Stdout io.Writer
}

// Start builds the tracer provider the environment asks for, or returns
// a Tracing that is off. It logs one line saying where spans go when
// tracing is on, and routes the SDK's errors (a collector that cannot be
// reached) to log, at most one line a minute. The error names the
// variable and what to set; the process should refuse to start.
func Start(ctx context.Context, log *slog.Logger, opts Options) (*Tracing, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	s, err := Parse(getenv)
	if err != nil {
		return nil, err
	}
	if !s.On() {
		return &Tracing{}, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", opts.Service)),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME: win over the default
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES=%q: %w; set comma-separated key=value pairs (values percent-encoded), such as deployment.environment=prod",
			getenv("OTEL_RESOURCE_ATTRIBUTES"), err)
	}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if s.Has(ExporterOTLP) {
		var eo []otlptracehttp.Option
		if !s.EndpointFromEnv {
			eo = append(eo, otlptracehttp.WithEndpointURL(DefaultEndpoint))
		}
		exp, err := otlptracehttp.New(ctx, eo...)
		if err != nil {
			return nil, fmt.Errorf("OTLP exporter: %w; check the OTEL_EXPORTER_OTLP_* variables", err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	if s.Has(ExporterConsole) {
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, fmt.Errorf("console exporter: %w", err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	// Tasks that start their own spans with otel.Tracer join the run's
	// trace through this provider.
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	otel.SetErrorHandler(&errorLog{log: log, now: time.Now, every: time.Minute})

	attrs := []any{"exporter", strings.Join(s.Exporters, ","), "service", serviceName(res), "sampler", s.Sampler}
	if s.Has(ExporterOTLP) {
		attrs = append(attrs, "endpoint", s.Endpoint, "protocol", s.Protocol)
	}
	log.Info("tracing on", attrs...)
	return &Tracing{sdk: tp, Settings: s}, nil
}

// TracerProvider is the provider for coordinator.Config.Tracing and
// worker.Config.Tracing: nil when tracing is off.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk
}

// Shutdown exports the spans still buffered and stops the exporters,
// waiting at most timeout. Call it once the coordinator or worker has
// stopped. Off, it does nothing.
func (t *Tracing) Shutdown(timeout time.Duration) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := t.sdk.Shutdown(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("tracing: the last spans were not exported within %s: %w", timeout, err)
		}
		return fmt.Errorf("tracing: %w", err)
	}
	return nil
}

func serviceName(res *resource.Resource) string {
	v, _ := res.Set().Value("service.name")
	return v.AsString()
}

// errorLog is the SDK's error handler: a failed export is logged at warn,
// at most once every period, with how many were held back.
type errorLog struct {
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	mu       sync.Mutex
	last     time.Time // guarded by mu
	heldBack int       // guarded by mu
}

func (e *errorLog) Handle(err error) {
	e.mu.Lock()
	now := e.now()
	if !e.last.IsZero() && now.Sub(e.last) < e.every {
		e.heldBack++
		e.mu.Unlock()
		return
	}
	held := e.heldBack
	e.last, e.heldBack = now, 0
	e.mu.Unlock()
	e.log.Warn("tracing: spans not exported; check that the collector at OTEL_EXPORTER_OTLP_ENDPOINT is up and reachable",
		"err", err, "held_back", held)
}
