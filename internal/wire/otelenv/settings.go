// Package otelenv turns OpenTelemetry tracing on in cmd/coordinator and
// cmd/worker from the standard OTEL_* environment variables. Tracing is off
// unless the environment asks for it:
//
//	OTEL_TRACES_EXPORTER=otlp|console|none   (a comma-separated list)
//	OTEL_EXPORTER_OTLP_ENDPOINT              (or ..._TRACES_ENDPOINT): otlp
//	OTEL_SDK_DISABLED=true                   forces it off
//
// OTLP goes over HTTP (otlptracehttp, which reads the remaining
// OTEL_EXPORTER_OTLP_* variables itself: headers, timeout, compression,
// certificates). The gRPC exporter (otlptracegrpc) is not built in: one
// more dependency for what every collector also takes over HTTP, on port
// 4318. The SDK reads OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_* and
// OTEL_SPAN_*_LIMIT; the resource comes from OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES. Values the SDK would
// quietly ignore (an unknown sampler, a bad ratio, a URL without a scheme)
// are refused here, so a process does not start believing it traces.
package otelenv

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// The exporters OTEL_TRACES_EXPORTER may name.
const (
	ExporterOTLP    = "otlp"
	ExporterConsole = "console"
	exporterNone    = "none"
)

// The OTLP/HTTP encodings otlptracehttp speaks.
const (
	ProtocolHTTPProtobuf = "http/protobuf"
	ProtocolHTTPJSON     = "http/json"
)

// DefaultEndpoint is where OTLP spans go when no endpoint variable is set:
// the specification's default for OTLP/HTTP.
const DefaultEndpoint = "http://localhost:4318/v1/traces"

// Settings is what the environment asks of tracing.
type Settings struct {
	// Exporters are ExporterOTLP and/or ExporterConsole; none means off.
	Exporters []string
	// Endpoint is the URL OTLP spans are posted to (for the log line and
	// when no endpoint variable is set; otlptracehttp reads the variables).
	Endpoint string
	// EndpointFromEnv reports whether an endpoint variable set Endpoint.
	EndpointFromEnv bool
	// Protocol is ProtocolHTTPProtobuf or ProtocolHTTPJSON.
	Protocol string
	// Sampler is OTEL_TRACES_SAMPLER (with its argument), or the SDK's
	// default, parentbased_always_on.
	Sampler string
}

// On reports whether tracing is on.
func (s Settings) On() bool { return len(s.Exporters) > 0 }

// Has reports whether exporter is among s.Exporters.
func (s Settings) Has(exporter string) bool { return slices.Contains(s.Exporters, exporter) }

// Parse reads the tracing settings from getenv (os.Getenv in the
// binaries). An empty variable counts as unset. The error names the
// variable and says what to set.
func Parse(getenv func(string) string) (Settings, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	switch v := strings.ToLower(get("OTEL_SDK_DISABLED")); v {
	case "true":
		return Settings{}, nil
	case "", "false":
	default:
		return Settings{}, fmt.Errorf("OTEL_SDK_DISABLED=%q: set true (no tracing) or false", v)
	}

	var s Settings
	base, traces := get("OTEL_EXPORTER_OTLP_ENDPOINT"), get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if list := get("OTEL_TRACES_EXPORTER"); list != "" {
		for e := range strings.SplitSeq(list, ",") {
			e = strings.ToLower(strings.TrimSpace(e))
			switch e {
			case exporterNone, "":
			case ExporterOTLP, ExporterConsole:
				if !s.Has(e) {
					s.Exporters = append(s.Exporters, e)
				}
			default:
				return Settings{}, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: %q is not built in; set otlp (OTLP over HTTP), console (spans as JSON on stdout) or none", list, e)
			}
		}
	} else if base != "" || traces != "" {
		s.Exporters = []string{ExporterOTLP}
	}
	if !s.On() {
		return Settings{}, nil
	}

	sampler, err := parseSampler(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return Settings{}, err
	}
	s.Sampler = sampler
	if !s.Has(ExporterOTLP) {
		return s, nil
	}

	s.Protocol = ProtocolHTTPProtobuf
	for _, k := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		switch v := get(k); v {
		case "":
		case ProtocolHTTPProtobuf, ProtocolHTTPJSON:
			s.Protocol = v
		case "grpc":
			return Settings{}, fmt.Errorf("%s=grpc: Cano's binaries send OTLP over HTTP only (the gRPC exporter is not built in); "+
				"set it to http/protobuf (or unset it) and point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's OTLP/HTTP port, usually 4318", k)
		default:
			return Settings{}, fmt.Errorf("%s=%q: set http/protobuf (the default) or http/json", k, v)
		}
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"} {
		if v := get(k); v != "" {
			if ms, err := strconv.ParseInt(v, 10, 64); err != nil || ms < 0 {
				return Settings{}, fmt.Errorf("%s=%q: set a whole number of milliseconds, such as 10000", k, v)
			}
		}
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"} {
		if v := get(k); v != "" && v != "gzip" && v != "none" {
			return Settings{}, fmt.Errorf("%s=%q: set gzip or none", k, v)
		}
	}

	// The endpoint, resolved as otlptracehttp resolves it: the per-signal
	// URL as it is; the base URL with /v1/traces appended.
	s.Endpoint = DefaultEndpoint
	if base != "" {
		u, err := endpointURL("OTEL_EXPORTER_OTLP_ENDPOINT", base)
		if err != nil {
			return Settings{}, err
		}
		u.Path = path.Join(u.Path, "/v1/traces")
		s.Endpoint, s.EndpointFromEnv = u.String(), true
	}
	if traces != "" {
		u, err := endpointURL("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)
		if err != nil {
			return Settings{}, err
		}
		if u.Path == "" {
			u.Path = "/"
		}
		s.Endpoint, s.EndpointFromEnv = u.String(), true
	}
	return s, nil
}

// endpointURL parses the value v of the endpoint variable k: an http or
// https URL with a host.
func endpointURL(k, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q: set an http:// or https:// URL of the collector's OTLP/HTTP receiver, such as http://otel-collector:4318", k, v)
	}
	return u, nil
}

// parseSampler checks OTEL_TRACES_SAMPLER and its argument as the SDK
// reads them (which would log a bad value and sample everything) and
// returns them for the log line.
func parseSampler(name, arg string) (string, error) {
	name = strings.ToLower(name)
	switch name {
	case "":
		return "parentbased_always_on", nil
	case "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return name, nil
	case "traceidratio", "parentbased_traceidratio":
		if arg == "" {
			return name + ":1", nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return "", fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: set the share of traces to keep, a number from 0 to 1 (such as 0.25)", arg)
		}
		return name + ":" + arg, nil
	default:
		return "", fmt.Errorf("OTEL_TRACES_SAMPLER=%q: set always_on, always_off, traceidratio, parentbased_always_on (the default), "+
			"parentbased_always_off or parentbased_traceidratio", name)
	}
}
