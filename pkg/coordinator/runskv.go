package coordinator

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// runsKV is what a shard needs of the runs bucket: consistent reads
// (consistent.go), the bucket's value limit, and the two writes — the
// create of a new run and the compare-and-set of a moved one. It is the
// seam tests wrap to inject revision conflicts, timeouts and stale or
// missing records (see faultKV in the package's tests).
type runsKV interface {
	// get reads key, confirmed with the stream leader when the direct
	// read finds nothing or a revision below minRev (kvread.Reader.Get).
	get(ctx context.Context, key string, minRev uint64) (jetstream.KeyValueEntry, error)
	// leader reads key from the runs stream's leader.
	leader(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	// limit is the bucket's max value size.
	limit(ctx context.Context) int
	// create writes a new key; jetstream.ErrKeyExists if it is there.
	create(ctx context.Context, key string, data []byte) (uint64, error)
	// update writes rec (encoded as data) over revision rev and returns
	// the new revision; a conflict matches jetstream.ErrKeyRevisionMismatch.
	update(ctx context.Context, rec *protocol.RunRecord, data []byte, rev uint64) (uint64, error)
}

// jsRuns is the runs bucket on JetStream, through the coordinator's
// handles (set in Start, before any shard runs).
type jsRuns struct{ c *Coordinator }

var _ runsKV = jsRuns{}

func (r jsRuns) get(ctx context.Context, key string, minRev uint64) (jetstream.KeyValueEntry, error) {
	return r.c.runsRead.Get(ctx, key, minRev)
}

func (r jsRuns) leader(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	return r.c.runsRead.Leader(ctx, key)
}

func (r jsRuns) limit(ctx context.Context) int { return r.c.runsRead.Limit(ctx) }

func (r jsRuns) create(ctx context.Context, key string, data []byte) (uint64, error) {
	return r.c.runs.Create(ctx, key, data)
}

// update: see retention.go — a terminal record is written with a TTL.
func (r jsRuns) update(ctx context.Context, rec *protocol.RunRecord, data []byte, rev uint64) (uint64, error) {
	c := r.c
	key := layout.RunKey(rec.ID)
	if !rec.Status.Terminal() || c.cfg.RunRetention < 0 {
		return c.runs.Update(ctx, key, data, rev)
	}
	msg := &nats.Msg{Subject: protocol.KVSubject(c.runs.Bucket(), key), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	msg.Header.Set(jetstream.MsgTTLHeader, ttlValue(c.cfg.RunRetention.Seconds()))
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, kvcas.Mark(err)
	}
	return ack.Sequence, nil
}
