package otelenv

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// TestParse: tracing is off unless OTEL_TRACES_EXPORTER or an OTLP
// endpoint asks for it; bad values are refused with the variable's name
// and what to set.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Settings
		err  string // substring of the error; "" for none
	}{
		{name: "unset: off", env: nil, want: Settings{}},
		{name: "none: off", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: Settings{}},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"},
			want: Settings{Exporters: []string{"console"}, Sampler: "parentbased_always_on"}},
		{name: "otlp: default endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"},
			want: Settings{Exporters: []string{"otlp"}, Endpoint: DefaultEndpoint, Protocol: "http/protobuf", Sampler: "parentbased_always_on"}},
		{name: "endpoint alone turns otlp on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want: Settings{Exporters: []string{"otlp"}, Endpoint: "http://collector:4318/v1/traces", EndpointFromEnv: true,
				Protocol: "http/protobuf", Sampler: "parentbased_always_on"}},
		{name: "traces endpoint as is, wins over the base", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318/base",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b:443/custom"},
			want: Settings{Exporters: []string{"otlp"}, Endpoint: "https://b:443/custom", EndpointFromEnv: true,
				Protocol: "http/protobuf", Sampler: "parentbased_always_on"}},
		{name: "otlp and console, case and spaces", env: map[string]string{"OTEL_TRACES_EXPORTER": " OTLP , console,otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
			want: Settings{Exporters: []string{"otlp", "console"}, Endpoint: DefaultEndpoint, Protocol: "http/json",
				Sampler: "parentbased_traceidratio:0.25"}},
		{name: "SDK disabled wins", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: Settings{}},
		{name: "SDK disabled false", env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"},
			want: Settings{Exporters: []string{"console"}, Sampler: "parentbased_always_on"}},
		{name: "off: bad OTLP values are not looked at", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: Settings{}},
		{name: "console: OTLP values are not looked at", env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			want: Settings{Exporters: []string{"console"}, Sampler: "parentbased_always_on"}},

		{name: "grpc protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			err: "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: Cano's binaries send OTLP over HTTP only"},
		{name: "grpc traces protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			err: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"},
		{name: "unknown protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
			err: `OTEL_EXPORTER_OTLP_PROTOCOL="thrift": set http/protobuf (the default) or http/json`},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp,zipkin"},
			err: `"zipkin" is not built in; set otlp`},
		{name: "bad SDK disabled", env: map[string]string{"OTEL_SDK_DISABLED": "yes"}, err: `OTEL_SDK_DISABLED="yes": set true`},
		{name: "endpoint without scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
			err: `OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318": set an http:// or https:// URL`},
		{name: "traces endpoint without host", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http:///v1/traces"},
			err: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="},
		{name: "unknown sampler", env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "jaeger_remote"},
			err: `OTEL_TRACES_SAMPLER="jaeger_remote": set always_on`},
		{name: "ratio above 1", env: map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "5"},
			err: `OTEL_TRACES_SAMPLER_ARG="5": set the share of traces to keep, a number from 0 to 1`},
		{name: "bad timeout", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
			err: `OTEL_EXPORTER_OTLP_TIMEOUT="10s": set a whole number of milliseconds`},
		{name: "bad compression", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"},
			err: `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION="zstd": set gzip or none`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(envOf(tc.env))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, len(tc.want.Exporters) > 0, got.On())
		})
	}
}

// TestStartConsole builds the console exporter's provider from the
// environment: the service name defaults to the one given, the
// environment's resource attributes and service name win, a span is
// written on Shutdown, and one log line says tracing is on.
func TestStartConsole(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
	for _, tc := range []struct{ envName, want string }{{"", "cano-worker"}, {"billing-worker", "billing-worker"}} {
		t.Setenv("OTEL_SERVICE_NAME", tc.envName)
		var logs, out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		tr, err := Start(context.Background(), log, Options{Service: "cano-worker", Stdout: &out})
		require.NoError(t, err)
		require.NotNil(t, tr.TracerProvider())
		_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "cano.task x")
		span.End()
		require.NoError(t, tr.Shutdown(FlushTimeout))
		require.Contains(t, logs.String(), `msg="tracing on" exporter=console service=`+tc.want+" sampler=parentbased_always_on")

		var got struct {
			Name     string
			Resource []struct {
				Key   string
				Value struct{ Value any }
			}
		}
		require.NoError(t, json.NewDecoder(&out).Decode(&got), out.String())
		require.Equal(t, "cano.task x", got.Name)
		res := map[string]any{}
		for _, kv := range got.Resource {
			res[kv.Key] = kv.Value.Value
		}
		require.Equal(t, tc.want, res["service.name"])
		require.Equal(t, "test", res["deployment.environment"])
	}
}

// TestStartOffAndRefused: off is a nil provider and a no-op Shutdown; a
// bad value or a bad resource attribute is an error.
func TestStartOffAndRefused(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tr, err := Start(context.Background(), log, Options{Service: "s", Getenv: envOf(nil)})
	require.NoError(t, err)
	require.Nil(t, tr.TracerProvider())
	require.NoError(t, tr.Shutdown(time.Second))
	var nilTracing *Tracing
	require.Nil(t, nilTracing.TracerProvider())

	_, err = Start(context.Background(), log, Options{Service: "s", Getenv: envOf(map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"})})
	require.ErrorContains(t, err, "OTEL_TRACES_EXPORTER")

	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "no-equals-sign")
	_, err = Start(context.Background(), log, Options{Service: "s"})
	require.ErrorContains(t, err, `OTEL_RESOURCE_ATTRIBUTES="no-equals-sign"`)
	require.ErrorContains(t, err, "set comma-separated key=value pairs")
}

// TestErrorLogThrottled: failed exports are logged at most once a period,
// the next line counting those held back.
func TestErrorLogThrottled(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	e := &errorLog{log: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }, every: time.Minute}
	e.Handle(context.DeadlineExceeded)
	for range 3 {
		now = now.Add(10 * time.Second)
		e.Handle(context.DeadlineExceeded)
	}
	require.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("\n")))
	now = now.Add(31 * time.Second)
	e.Handle(context.DeadlineExceeded)
	require.Equal(t, 2, bytes.Count(buf.Bytes(), []byte("\n")))
	require.Contains(t, buf.String(), "held_back=3")
}
