package coordinator

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/pkg/protocol"
)

// observe is called for every written transition (shard.commit) with the
// input that caused it: it counts it (metrics.go), traces the steps it
// left (tracing.go) and logs a run this coordinator failed.
func (c *Coordinator) observe(in jetstream.Msg, rec *protocol.RunRecord, fx *engine.Effects) {
	c.metrics.committed(rec, fx)
	c.traceSteps(in.Headers(), rec)
	if fx.Ended && rec.Status == protocol.RunFailed {
		c.logFailed(rec)
	}
}

// logFailed logs a failed run at warn, once per run (the transition that
// failed it is written once). Bursts of the same failure (workflow, state,
// category) are held back by Config.WarnInterval with a count.
func (c *Coordinator) logFailed(rec *protocol.RunRecord) {
	args := []any{"run_id", rec.ID, "workflow", rec.Workflow, "state", rec.State}
	key := "run failed " + rec.Workflow + " " + rec.State
	if e := rec.Error; e != nil {
		if e.State != "" {
			args[5] = e.State
		}
		args = append(args, "attempt", e.Attempts, "category", string(e.Category), "err", fsmbridge.FromErrorInfo(e).Error())
		key += " " + string(e.Category)
	}
	c.warn(key, "run failed", args...)
}
