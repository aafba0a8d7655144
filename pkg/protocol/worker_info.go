package protocol

import "fmt"

// WorkerHealth is a worker's health as published in its [WorkerInfo]: the
// aggregated health of its resources, worst wins. The values are kvstore's
// HealthState strings.
type WorkerHealth string

// Worker health values.
const (
	WorkerHealthy   WorkerHealth = "healthy"
	WorkerDegraded  WorkerHealth = "degraded"
	WorkerUnhealthy WorkerHealth = "unhealthy"
)

// MaxWorkerIDLen is the longest worker id accepted.
const MaxWorkerIDLen = 256

// WorkerInfo is a live worker's presence entry in the workers bucket
// (<prefix>_workers) under the worker's id, or "b64." and the id in
// unpadded base64url when the id is not a token ([ValidToken]). The worker puts it on start, refreshes it every heartbeat
// interval and deletes it on stop; the bucket's TTL removes the entry of a
// worker that died without stopping.
type WorkerInfo struct {
	V  uint16 `msgpack:"v"`
	ID string `msgpack:"id"`
	// Hostname and PID identify the worker's process.
	Hostname string `msgpack:"hostname,omitempty"`
	PID      int64  `msgpack:"pid,omitempty"`
	// Version is the cano module version the worker was built with
	// ("(devel)" for a local build), "" if unknown.
	Version string `msgpack:"version,omitempty"`
	// Times in unix nanoseconds.
	StartedAt   int64 `msgpack:"started_at"`
	HeartbeatAt int64 `msgpack:"heartbeat_at"`
	// HeartbeatInterval (ns) is how often the entry is refreshed.
	HeartbeatInterval int64 `msgpack:"heartbeat_interval"`
	// Kinds are the task kinds the worker runs, sorted; Queues the task
	// queues it pulls.
	Kinds  []string `msgpack:"kinds"`
	Queues []string `msgpack:"queues"`
	// Concurrency bounds its tasks running at once; InFlight is how many
	// were running at HeartbeatAt.
	Concurrency uint32 `msgpack:"concurrency"`
	InFlight    uint32 `msgpack:"in_flight"`
	// Health is its resources' aggregated health; HealthReason says why
	// when it is not healthy.
	Health       WorkerHealth `msgpack:"health"`
	HealthReason string       `msgpack:"health_reason,omitempty"`
	// Stopping is set while the worker drains its tasks before it stops.
	Stopping bool `msgpack:"stopping,omitempty"`
}

func (m *WorkerInfo) schemaVersion() uint16 { return m.V }

// validate implements [Message].
func (m *WorkerInfo) validate() error {
	if m.ID == "" {
		return missing("worker_info", "id")
	}
	if len(m.ID) > MaxWorkerIDLen {
		return invalid("worker_info", "id", fmt.Sprintf("longer than %d bytes", MaxWorkerIDLen))
	}
	for i, k := range m.Kinds {
		if err := ValidToken(k); err != nil {
			return badName("worker_info", fmt.Sprintf("kinds[%d]", i), err)
		}
	}
	for i, q := range m.Queues {
		if err := ValidToken(q); err != nil {
			return badName("worker_info", fmt.Sprintf("queues[%d]", i), err)
		}
	}
	switch m.Health {
	case WorkerHealthy, WorkerDegraded, WorkerUnhealthy:
	default:
		return invalid("worker_info", "health", fmt.Sprintf("%q", m.Health))
	}
	return nil
}
