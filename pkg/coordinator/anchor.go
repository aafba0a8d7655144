package coordinator

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/layout"
)

// The tasks stream's anchor. The tasks stream is a work queue: a command
// is removed when its worker acknowledges it. When that empties the
// stream's last message block, the server's file store deletes the block's
// file and creates a new one (nats-server filestore.go, removeMsgBlock) —
// which, at any load that lets the queue drain between commands, is once
// per task. On ext4 that file churn cost about 370 µs of CPU per
// sequential one-task run, mostly in the kernel, and more than doubled the
// sequential latency (canobench -scenarios latency: p50 0.60 → 0.25 ms, CPU
// per run 740 → 360 µs with an anchor).
//
// So every coordinator publishes a small message to the stream, on a
// subject no task consumer takes (layout.TasksAnchorSubject), every
// anchorEvery, with a per-message TTL of anchorTTL: there is always one
// alive, written after the commands before it, so the last block is not
// emptied by acknowledgements. A block that rolls over (every 4 MiB of
// commands) starts without one for at most anchorEvery: with a 15 s period,
// the latency scenario right after the throughput ones (whose commands had
// rolled the block over) measured p50 0.90 ms instead of 0.24. Anchors of
// the same second carry the same message id, so several coordinators store
// one; a few are alive at any time (the TTL over the period). A failed
// publish (a server without per-message TTLs, a stream not provisioned by
// this version) is logged at debug level and tried again next period: the
// anchor saves CPU and changes nothing else.
const (
	anchorEvery = time.Second
	anchorTTL   = 3 * time.Second
)

// anchorLoop publishes the tasks stream's anchor until ctx ends, then
// closes done.
func (c *Coordinator) anchorLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(anchorEvery)
	defer t.Stop()
	for {
		c.anchor(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Coordinator) anchor(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, anchorEvery/2)
	defer cancel()
	period := time.Now().UnixNano() / int64(anchorEvery)
	_, err := c.js.Publish(ctx, layout.TasksAnchorSubject(c.names), nil,
		jetstream.WithMsgTTL(anchorTTL), jetstream.WithMsgID("anchor:"+strconv.FormatInt(period, 10)))
	if err != nil && ctx.Err() == nil {
		c.log.Debug("tasks stream anchor not stored; tried again in "+anchorEvery.String(), "err", err)
	}
}
