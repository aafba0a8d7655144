package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// WorkerHealth is a worker's health: the aggregated health of its
// resources, worst wins.
type WorkerHealth string

// Worker health values.
const (
	// WorkerHealthy: every resource of the worker is healthy.
	WorkerHealthy WorkerHealth = "healthy"
	// WorkerDegraded: a resource works with trouble (HealthReason says
	// which); the worker still runs tasks.
	WorkerDegraded WorkerHealth = "degraded"
	// WorkerUnhealthy: a resource is down.
	WorkerUnhealthy WorkerHealth = "unhealthy"
)

// WorkerInfo is a live worker, as [Client.Workers] and [Client.Worker]
// return it: what it published at its last heartbeat.
type WorkerInfo struct {
	// ID is the worker's id (worker.Config.ID).
	ID string
	// Hostname and PID identify the worker's process.
	Hostname string
	PID      int
	// Version is the cano module version the worker was built with
	// ("(devel)" for a local build), "" if unknown.
	Version string
	// StartedAt is when the worker started; HeartbeatAt when it last
	// refreshed its entry, which it does every HeartbeatInterval.
	StartedAt         time.Time
	HeartbeatAt       time.Time
	HeartbeatInterval time.Duration
	// Kinds are the task kinds it runs, sorted; Queues the task queues it
	// pulls.
	Kinds  []string
	Queues []string
	// Concurrency bounds its tasks running at once; InFlight is how many
	// were running at HeartbeatAt.
	Concurrency int
	InFlight    int
	// Health is its resources' aggregated health; HealthReason says why
	// when it is not [WorkerHealthy].
	Health       WorkerHealth
	HealthReason string
	// Stopping is set while the worker drains its tasks before it stops.
	Stopping bool
}

// workerFrom converts a wire worker entry.
func workerFrom(w *protocol.WorkerInfo) WorkerInfo {
	return WorkerInfo{
		ID:                w.ID,
		Hostname:          w.Hostname,
		PID:               int(w.PID),
		Version:           w.Version,
		StartedAt:         timeOf(w.StartedAt),
		HeartbeatAt:       timeOf(w.HeartbeatAt),
		HeartbeatInterval: time.Duration(w.HeartbeatInterval),
		Kinds:             w.Kinds,
		Queues:            w.Queues,
		Concurrency:       int(w.Concurrency),
		InFlight:          int(w.InFlight),
		Health:            WorkerHealth(w.Health),
		HealthReason:      w.HealthReason,
		Stopping:          w.Stopping,
	}
}

// ErrWorkerNotFound is returned by [Client.Worker] for a worker id with no
// live entry.
var ErrWorkerNotFound = errors.New("client: worker not found")

// Workers lists the live workers (the workers bucket), sorted by id: each
// with its host, kinds, queues, concurrency, tasks in flight at its last
// heartbeat, health, and whether it is stopping. A worker appears once
// started and is deleted when it stops; one that died disappears when its
// entry's TTL (provision.WorkersTTLDefault after its last heartbeat) runs
// out. An entry that does not decode (a newer schema version) is left out.
// If ctx has no deadline, Config.Timeout applies. It never returns a nil
// slice without an error.
func (c *Client) Workers(ctx context.Context) ([]WorkerInfo, error) {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, layout.WorkersBucket(c.names))
	if err != nil {
		return nil, fmt.Errorf("client: workers bucket: %w", err)
	}
	out := []WorkerInfo{}
	err = c.eachEntry(ctx, kv, "workers", func(e jetstream.KeyValueEntry) {
		var info protocol.WorkerInfo
		if wirecodec.Decode(e.Value(), &info, 0) == nil {
			out = append(out, workerFrom(&info))
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b WorkerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Worker returns the live worker id's entry (see [Client.Workers]), or an
// error matching [ErrWorkerNotFound] if it has none: it never started, it
// stopped, or it died over a TTL ago. An entry that does not decode gives
// an error wrapping a protocol sentinel (protocol.ErrMalformed, ...). If
// ctx has no deadline, Config.Timeout applies.
func (c *Client) Worker(ctx context.Context, id string) (*WorkerInfo, error) {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	if id == "" {
		return nil, fmt.Errorf("%w: empty id", ErrWorkerNotFound)
	}
	kv, err := c.js.KeyValue(ctx, layout.WorkersBucket(c.names))
	if err != nil {
		return nil, fmt.Errorf("client: workers bucket: %w", err)
	}
	e, err := kv.Get(ctx, layout.WorkerKey(id))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: %q", ErrWorkerNotFound, id)
		}
		return nil, fmt.Errorf("client: worker %q: %w", id, err)
	}
	var info protocol.WorkerInfo
	if err := wirecodec.Decode(e.Value(), &info, 0); err != nil {
		return nil, fmt.Errorf("client: worker %q: %w", id, err)
	}
	out := workerFrom(&info)
	return &out, nil
}
