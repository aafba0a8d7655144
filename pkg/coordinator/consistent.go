package coordinator

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Consistent reads of run records.
//
// A record read through the bucket (a direct get) may come from a replica
// that lags: "not found" for a run created a few milliseconds ago, or an
// older revision. The coordinator never takes such an answer as final:
//
//   - a record that is absent is confirmed with the stream leader before a
//     result is dead-lettered as "for an unknown run" (readRecord);
//   - a record older than the input in hand implies (a result or timer for
//     a step the record has not reached; only ever published after the
//     record reached it) is re-read from the leader (behind, leaderRecord);
//   - after a compare-and-set conflict, a re-read must return a revision
//     past the one that conflicted, or it is confirmed with the leader.
//
// The hot path keeps the fast direct read: the confirmation costs a leader
// read only when the fast answer is suspect.

// behind reports whether rec is older than one of jobs implies: a result
// or a timer of a later step than the record's.
func behind(rec *protocol.RunRecord, jobs []job) bool {
	for _, j := range jobs {
		switch {
		case j.res != nil && j.res.Step > rec.Step:
			return true
		case j.timer != nil && j.timer.Step > rec.Step:
			return true
		}
	}
	return false
}

// readRecord reads runID's record from KV (not the cache), confirmed with
// the stream leader when the direct read finds nothing or a revision below
// minRev. A record that is not terminal is cached.
func (s *shard) readRecord(ctx context.Context, runID string, minRev uint64) (*entry, error) {
	delete(s.cache, runID)
	kve, err := s.kv.get(ctx, layout.RunKey(runID), minRev)
	if err != nil {
		return nil, err
	}
	return s.decodeRecord(ctx, runID, kve)
}

// leaderRecord reads runID's record from the runs stream's leader.
func (s *shard) leaderRecord(ctx context.Context, runID string) (*entry, error) {
	delete(s.cache, runID)
	kve, err := s.kv.leader(ctx, layout.RunKey(runID))
	if err != nil {
		return nil, err
	}
	return s.decodeRecord(ctx, runID, kve)
}

// decodeRecord decodes a record of the runs bucket, bounded by the
// bucket's own limit (what the engine writes it can read back).
func (s *shard) decodeRecord(ctx context.Context, runID string, kve jetstream.KeyValueEntry) (*entry, error) {
	var rec protocol.RunRecord
	if err := wirecodec.Decode(kve.Value(), &rec, s.kv.limit(ctx)); err != nil {
		return nil, fmt.Errorf("coordinator: run record %s: %w", runID, err)
	}
	e := &entry{rec: &rec, rev: kve.Revision()}
	if cacheable(&rec) {
		s.cache[runID] = e
	}
	return e, nil
}

// cacheable reports whether a shard keeps rec in its cache: a run going
// on. Not an ended run, nor a scheduled one, which may wait for days and
// is read when its start timer fires.
func cacheable(rec *protocol.RunRecord) bool { return rec.Status == protocol.RunRunning }

// recordHeadroom is the part of the runs bucket's value limit a new run
// record may not use: kept for what the run adds as it goes (path, last
// output, error), so a record accepted at the start can still be written
// at its end.
const recordHeadroom = 64 << 10

// checkRecordSize refuses a trigger whose new run record (size bytes)
// would not fit the runs bucket's limit less recordHeadroom: written, it
// could not be moved on (or, before the limits agreed, read back).
func (s *shard) checkRecordSize(ctx context.Context, j job, size int) error {
	bucket := s.kv.limit(ctx)
	if size <= bucket-recordHeadroom {
		return nil
	}
	return fmt.Errorf("%w: %w: the run record for this trigger would be %d bytes (its input is %d bytes); "+
		"run records are limited to %d bytes (the runs bucket's max value size, %d, less %d kept for the run's "+
		"progress): store large data elsewhere (an object store, a database, or the run's store) and pass a "+
		"reference to it in the input", fsm.ErrConfiguration, protocol.ErrTooLarge,
		size, len(j.trig.Input), bucket-recordHeadroom, bucket, recordHeadroom)
}
