package worker

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/version"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/protocol"
)

// presenceStopTimeout bounds each of the two best-effort writes Stop makes
// to the workers bucket: marking the entry stopping, then deleting it.
const presenceStopTimeout = time.Second

// inFlightCheck is how often the presence loop looks whether the worker's
// tasks in flight changed since the entry was last written, and writes it
// again if so: listings (canoctl workers list, the dashboard) then lag the
// worker by about a second, not a PresenceInterval, at the cost of at most
// one write a second while the count moves.
const inFlightCheck = time.Second

// presence keeps the worker's [protocol.WorkerInfo] in the workers bucket:
// put on Start, refreshed every PresenceInterval by one goroutine, marked
// stopping when Stop begins and deleted when it ends. A failed write is
// logged and retried at the next tick; it never stops the worker. The
// bucket's TTL removes the entry of a worker that died without stopping.
type presence struct {
	w    *Worker
	kv   jetstream.KeyValue
	key  string
	info protocol.WorkerInfo // the fields that never change, set by newPresence

	// Set by start, under the worker's mu.
	cancel context.CancelFunc // ends the loop; nil until start
	done   chan struct{}      // closed when the loop has returned

	// failing is owned by the loop, and by Stop once the loop has returned.
	failing bool
	// written is the tasks in flight of the last entry written.
	written atomic.Int64
	// rev is the revision of the entry last written (0: none yet), and
	// warned when a shared id was last logged; both owned like failing.
	rev    uint64
	warned time.Time
}

func newPresence(w *Worker, kv jetstream.KeyValue) *presence {
	host, _ := os.Hostname()
	return &presence{w: w, kv: kv, key: layout.WorkerKey(w.cfg.ID), info: protocol.WorkerInfo{
		V:                 protocol.SchemaVersion,
		ID:                w.cfg.ID,
		Hostname:          host,
		PID:               int64(os.Getpid()),
		Version:           moduleVersion(),
		StartedAt:         time.Now().UnixNano(),
		HeartbeatInterval: int64(w.cfg.PresenceInterval),
		Kinds:             w.cfg.Registry.Kinds(),
		Queues:            w.queues(),
		Concurrency:       uint32(w.cfg.Concurrency),
	}}
}

// start writes the first entry (bounded by ctx; a failure is only logged)
// and starts the refresh loop.
func (p *presence) start(ctx context.Context) {
	p.refresh(ctx, false)
	loop, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.run(loop)
}

func (p *presence) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.w.cfg.PresenceInterval)
	defer t.Stop()
	check := time.NewTicker(min(inFlightCheck, p.w.cfg.PresenceInterval))
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.refresh(ctx, false)
		case <-check.C:
			if max(0, p.w.inFlight.Load()) != p.written.Load() {
				p.refresh(ctx, false)
			}
		}
	}
}

// refresh writes the entry within one interval (at least a second), and
// logs a failure at Warn and the first success after failures at Info. It
// says nothing when ctx was cancelled (the worker is stopping).
func (p *presence) refresh(ctx context.Context, stopping bool) {
	bctx, cancel := context.WithTimeout(ctx, max(p.w.cfg.PresenceInterval, time.Second))
	defer cancel()
	err := p.put(bctx, stopping)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
	case err != nil:
		p.failing = true
		p.w.log.Warn("worker heartbeat failed; retrying at the next one", "bucket", layout.WorkersBucket(p.w.names), "key", p.key, "err", err)
	case p.failing:
		p.failing = false
		p.w.log.Info("worker heartbeat restored", "bucket", layout.WorkersBucket(p.w.names), "key", p.key)
	}
}

// put writes the entry with the current time, tasks in flight and health.
// The health check gets half of ctx's time, so a slow check still leaves
// time for the write.
func (p *presence) put(ctx context.Context, stopping bool) error {
	info := p.info
	hctx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
		defer cancel()
	}
	h := p.w.Health(hctx)
	info.Health, info.HealthReason = workerHealth(h.State), h.Reason
	inFlight := max(0, p.w.inFlight.Load())
	info.InFlight = uint32(inFlight)
	info.Stopping = stopping
	info.HeartbeatAt = time.Now().UnixNano()
	data, err := wirecodec.Encode(&info)
	if err != nil {
		return err
	}
	// The entry is updated on the revision this worker wrote last: a
	// mismatch means another process wrote it, a worker with the same id.
	var rev uint64
	if p.rev != 0 {
		rev, err = p.kv.Update(ctx, p.key, data, p.rev)
	}
	if p.rev == 0 || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// Not on the first write: the entry may be this id's previous
		// process, restarted (its entry still fresh). A live twin writes
		// the entry again, and the next update finds it.
		if p.rev != 0 {
			p.sharedID(ctx)
		}
		rev, err = p.kv.Put(ctx, p.key, data)
	}
	if err != nil {
		return err
	}
	p.rev = rev
	p.written.Store(int64(inFlight))
	return nil
}

// sharedID warns (at most once a minute) when the entry under this
// worker's key is a live worker's in another process: two workers given
// one id share a listing entry, so listings show one of them, and each
// overwrites the other's heartbeat.
func (p *presence) sharedID(ctx context.Context) {
	e, err := p.kv.Get(ctx, p.key)
	if err != nil {
		return // none (or unreadable): nothing to say
	}
	var other protocol.WorkerInfo
	if wirecodec.Decode(e.Value(), &other, 0) != nil || other.Stopping ||
		(other.Hostname == p.info.Hostname && other.PID == p.info.PID && other.StartedAt == p.info.StartedAt) {
		return // this worker's own entry (a write whose acknowledgement was lost)
	}
	fresh := time.Duration(2 * max(other.HeartbeatInterval, int64(time.Second)))
	if time.Since(time.Unix(0, other.HeartbeatAt)) > fresh || time.Since(p.warned) < time.Minute {
		return
	}
	p.warned = time.Now()
	p.w.log.Warn("another worker runs with this worker's id: give each worker its own id (-id, Config.ID; the default is host-pid), or listings show only one of them",
		"id", p.info.ID, "other_host", other.Hostname, "other_pid", other.PID)
}

// stopping ends the refresh loop and marks the entry stopping (best
// effort). Safe to call before start.
func (p *presence) stopping(ctx context.Context) {
	if p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), presenceStopTimeout)
	defer cancel()
	p.refresh(sctx, true)
}

// remove deletes the entry (best effort). Safe to call before start.
func (p *presence) remove(ctx context.Context) {
	if p.cancel == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), presenceStopTimeout)
	defer cancel()
	if err := p.kv.Delete(dctx, p.key); err != nil {
		p.w.log.Warn("worker presence not deleted; it expires with the bucket's TTL", "bucket", layout.WorkersBucket(p.w.names), "key", p.key, "err", err)
	}
}

func workerHealth(s kvstore.HealthState) protocol.WorkerHealth {
	switch s {
	case kvstore.StateHealthy:
		return protocol.WorkerHealthy
	case kvstore.StateDegraded:
		return protocol.WorkerDegraded
	default:
		return protocol.WorkerUnhealthy
	}
}

// modulePath is the path of the module this package belongs to.
const modulePath = "github.com/cano-nats/cano"

// moduleVersion is the version of this module in the binary's build info
// (see reportedVersion).
var moduleVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	return reportedVersion(bi, version.Version)
})

// reportedVersion is the version of this module in bi: "(devel)" for a
// local build or a directory replacement, "" if unknown. A binary of this
// module built with a version set at link time (override:
// internal/version.Version, as the images are) reports that version.
func reportedVersion(bi *debug.BuildInfo, override string) string {
	if bi.Main.Path == modulePath {
		if override != "" {
			return override
		}
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path != modulePath {
			continue
		}
		if d.Replace != nil {
			if d.Replace.Version == "" {
				return "(devel)"
			}
			return d.Replace.Version
		}
		return d.Version
	}
	return ""
}
