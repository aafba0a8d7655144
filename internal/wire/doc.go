// Package wire documents the upper floor of internal/; it holds no code.
//
// The packages under internal/wire assemble the public packages (pkg/...)
// into programs: app runs the coordinator and worker processes for cmd/,
// cli reads their flags and environment and builds their loggers, otelenv
// builds their tracer provider from the OTEL_* variables, demo
// holds the demo workflows cmd/worker hosts, bench is the load generator
// behind cmd/canobench, provisioning retries provision.Ensure until the
// broker takes it and re-runs it after reconnects, and faults holds the fault suite's tasks (built
// into cmd/worker only with the canofaults build tag). They may import
// anything; only cmd/, test/ and _test files may import them. Helpers that
// pkg/ imports live one floor down, directly under internal/ (see package
// internal).
package wire
