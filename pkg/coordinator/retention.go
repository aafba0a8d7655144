package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Run-record retention.
//
// A run's final (terminal) record is written with a per-message TTL of
// Config.RunRetention: the runs bucket (provisioned with per-message TTLs)
// removes it when that passes, and leaves a short-lived marker that
// watchers see as a deletion. Records of running runs carry no TTL. The
// KV Update call takes no TTL, so the terminal write publishes to the
// key's subject itself, with the same compare-and-set header Update sends
// (the expected last sequence of the subject is the revision) and the
// Nats-TTL header; a wrong-sequence answer is the same conflict Update
// reports.

// updateRecord writes rec (encoded as data) over revision rev of its key
// and returns the new revision; a conflict matches
// jetstream.ErrKeyRevisionMismatch, as with KeyValue.Update.
func (s *shard) updateRecord(ctx context.Context, rec *protocol.RunRecord, data []byte, rev uint64) (uint64, error) {
	c := s.c
	key := layout.RunKey(rec.ID)
	if !rec.Status.Terminal() || c.cfg.RunRetention < 0 {
		return c.runs.Update(ctx, key, data, rev)
	}
	msg := &nats.Msg{Subject: protocol.KVSubject(c.runs.Bucket(), key), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	msg.Header.Set(jetstream.MsgTTLHeader, ttlValue(c.cfg.RunRetention.Seconds()))
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return 0, fmt.Errorf("%w: %w", err, jetstream.ErrKeyRevisionMismatch)
		}
		return 0, err
	}
	return ack.Sequence, nil
}

// ttlValue renders a Nats-TTL header value: whole seconds (the header's
// unit), at least 1.
func ttlValue(seconds float64) string {
	return strconv.FormatInt(max(int64(seconds), 1), 10)
}
