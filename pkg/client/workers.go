package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrWorkerNotFound is returned by [Client.Worker] for a worker id with no
// live entry.
var ErrWorkerNotFound = errors.New("client: worker not found")

// Workers lists the live workers (the workers bucket), sorted by id: each
// with its host, kinds, queues, concurrency, tasks in flight at its last
// heartbeat, health, and whether it is stopping. A worker appears once
// started and is deleted when it stops; one that died disappears when its
// entry's TTL (provision.WorkersTTLDefault after its last heartbeat) runs
// out. An entry that does not decode (a newer schema version) is left out.
// If ctx has no deadline, Config.Timeout applies.
func (c *Client) Workers(ctx context.Context) ([]protocol.WorkerInfo, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, c.names.WorkersBucket())
	if err != nil {
		return nil, fmt.Errorf("client: workers bucket: %w", err)
	}
	out := []protocol.WorkerInfo{}
	err = eachEntry(ctx, kv, "workers", func(e jetstream.KeyValueEntry) {
		var info protocol.WorkerInfo
		if protocol.Decode(e.Value(), &info, 0) == nil {
			out = append(out, info)
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b protocol.WorkerInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Worker returns the live worker id's entry (see [Client.Workers]), or an
// error matching [ErrWorkerNotFound] if it has none: it never started, it
// stopped, or it died over a TTL ago. If ctx has no deadline,
// Config.Timeout applies.
func (c *Client) Worker(ctx context.Context, id string) (*protocol.WorkerInfo, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if id == "" {
		return nil, fmt.Errorf("%w: empty id", ErrWorkerNotFound)
	}
	kv, err := c.js.KeyValue(ctx, c.names.WorkersBucket())
	if err != nil {
		return nil, fmt.Errorf("client: workers bucket: %w", err)
	}
	e, err := kv.Get(ctx, protocol.WorkerKey(id))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: %q", ErrWorkerNotFound, id)
		}
		return nil, fmt.Errorf("client: worker %q: %w", id, err)
	}
	var info protocol.WorkerInfo
	if err := protocol.Decode(e.Value(), &info, 0); err != nil {
		return nil, fmt.Errorf("client: worker %q: %w", id, err)
	}
	return &info, nil
}
