package kvstore

import (
	"context"
	"strings"
)

// Resource is something a worker sets up before it starts taking tasks and
// tears down when it stops: a database pool, an HTTP client, a breaker, the
// [Store]. Register resources in a [Resources].
//
// Setup is called once, in insertion order, by [Resources.SetupAll];
// Teardown is called in reverse order by [Resources.TeardownAll], and only
// for resources whose Setup succeeded. Embed [ResourceDefaults] for the
// methods a resource does not need.
type Resource interface {
	// Setup prepares the resource. An error stops the worker from starting.
	Setup(ctx context.Context) error
	// Teardown releases the resource. An error is logged; it does not stop
	// the other resources from being torn down.
	Teardown(ctx context.Context) error
}

// ResourceWithHealth is implemented by resources that can report their
// health. A resource that does not implement it is reported as healthy.
type ResourceWithHealth interface {
	Resource
	// Health reports the resource's current health. It should return
	// quickly; it is called for readiness probes.
	Health(ctx context.Context) HealthStatus
}

// ResourceDefaults implements [Resource] and [ResourceWithHealth] with
// no-op Setup and Teardown and an always-healthy Health. Embed it and
// override what you need:
//
//	type Cache struct {
//		kvstore.ResourceDefaults
//		m map[string]string
//	}
//
//	func (c *Cache) Setup(context.Context) error { c.m = map[string]string{}; return nil }
type ResourceDefaults struct{}

// Setup does nothing.
func (ResourceDefaults) Setup(context.Context) error { return nil }

// Teardown does nothing.
func (ResourceDefaults) Teardown(context.Context) error { return nil }

// Health reports [Healthy].
func (ResourceDefaults) Health(context.Context) HealthStatus { return Healthy() }

var _ ResourceWithHealth = ResourceDefaults{}

// HealthState is how well a resource works, from best to worst. It is
// in-memory only; its String form ("healthy", "degraded", "unhealthy") is
// what reports show.
type HealthState int

// Health states, ordered from best to worst.
const (
	// StateHealthy: the resource works. The zero value.
	StateHealthy HealthState = iota
	// StateDegraded: the resource works, with reduced capacity or latency.
	StateDegraded
	// StateUnhealthy: the resource does not work.
	StateUnhealthy
)

// String returns "healthy", "degraded" or "unhealthy".
func (s HealthState) String() string {
	switch s {
	case StateHealthy:
		return "healthy"
	case StateDegraded:
		return "degraded"
	case StateUnhealthy:
		return "unhealthy"
	default:
		return "unknown"
	}
}

// HealthStatus is a resource's health: a state and, unless healthy, a
// reason. The zero value is healthy.
type HealthStatus struct {
	State  HealthState
	Reason string
}

// Healthy returns a healthy status.
func Healthy() HealthStatus { return HealthStatus{} }

// Degraded returns a degraded status with reason.
func Degraded(reason string) HealthStatus {
	return HealthStatus{State: StateDegraded, Reason: reason}
}

// Unhealthy returns an unhealthy status with reason.
func Unhealthy(reason string) HealthStatus {
	return HealthStatus{State: StateUnhealthy, Reason: reason}
}

// IsHealthy reports whether the state is [StateHealthy].
func (h HealthStatus) IsHealthy() bool { return h.State == StateHealthy }

// String returns the state, followed by ": reason" when there is one.
func (h HealthStatus) String() string {
	if h.Reason == "" {
		return h.State.String()
	}
	return h.State.String() + ": " + h.Reason
}

// Aggregate returns the worst status in statuses (worst wins): unhealthy
// over degraded over healthy. Its reason lists every resource in the worst
// state as "key: reason", sorted by key, joined by "; ". An empty map is
// healthy.
func Aggregate(statuses map[string]HealthStatus) HealthStatus {
	worst := StateHealthy
	for _, s := range statuses {
		worst = max(worst, s.State)
	}
	if worst == StateHealthy {
		return Healthy()
	}
	var parts []string
	for _, k := range sortedKeys(statuses) {
		if s := statuses[k]; s.State == worst {
			parts = append(parts, k+": "+s.Reason)
		}
	}
	return HealthStatus{State: worst, Reason: strings.Join(parts, "; ")}
}
