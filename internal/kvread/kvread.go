// Package kvread reads a JetStream KV key so that "absent" or "older than
// revision X" is never taken from a replica that may lag.
//
// A KV bucket's Get is a direct get (the bucket's stream has AllowDirect):
// any replica of the stream answers it from its own store, and a follower
// still catching up answers with an old revision, or "not found" for a key
// written a few milliseconds ago. That is fine on the hot path, where a
// stale answer is caught by the compare-and-set that follows. It is not
// fine where the answer decides something for good: a coordinator that
// dead-letters a result because the run "does not exist", a worker that
// fails a task because the run record "is gone", a client that reports an
// unknown run right after triggering it.
//
// [Reader.Get] reads the fast way first and, only when the answer is
// absent or older than the revision the caller knows must exist, confirms
// it with the stream leader through the non-direct JetStream API
// (STREAM.MSG.GET, which only the leader answers). A KV entry's revision
// is its stream sequence, so "older than revision X" is a sequence compare.
package kvread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Reader reads the keys of one KV bucket. The zero value is not usable;
// use [New]. Safe for concurrent use.
type Reader struct {
	kv      jetstream.KeyValue
	nc      *nats.Conn
	subject string // "$KV.<bucket>." (the key is appended)
	msgGet  string // the leader's STREAM.MSG.GET subject of the bucket's stream

	mu    sync.Mutex
	limit int // guarded by mu; 0 until read
}

// New returns a reader of kv through js. It does no I/O.
func New(js jetstream.JetStream, kv jetstream.KeyValue) *Reader {
	bucket := kv.Bucket()
	o := js.Options()
	return &Reader{kv: kv, nc: js.Conn(), subject: protocol.KVSubject(bucket, ""),
		msgGet: protocol.StreamMsgGetSubject(protocol.JSAPIPrefix(o.Domain, o.APIPrefix), layout.KVStream(bucket))}
}

// Get returns the current entry of key. It reads through the bucket (a
// direct get, answered by any replica) and, when that read finds nothing
// (not found, deleted, expired) or an entry whose revision is below
// minRev, confirms with the stream leader ([Reader.Leader]); the leader's
// answer is final. minRev 0 means any revision will do.
//
// Errors are the bucket's: jetstream.ErrKeyNotFound when the leader too
// finds no live value, or the read's error.
func (r *Reader) Get(ctx context.Context, key string, minRev uint64) (jetstream.KeyValueEntry, error) {
	e, err := r.kv.Get(ctx, key)
	switch {
	case err == nil && e.Revision() >= minRev:
		return e, nil
	case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted):
		return nil, err
	}
	return r.Leader(ctx, key)
}

// Leader reads key from the bucket's stream leader, which has every
// acknowledged write. It is slower than a direct get and loads the leader:
// use it to confirm, not on the hot path. A key whose last message is a
// delete, purge or expiry marker gives jetstream.ErrKeyNotFound.
func (r *Reader) Leader(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := deadline.Default(ctx, leaderTimeout)
	defer cancel()
	req, err := json.Marshal(msgGetRequest{LastBySubject: r.subject + key})
	if err != nil {
		return nil, err
	}
	reply, err := r.ask(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("kvread: leader read of %s: %w", key, err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("kvread: leader read of %s: %w", key, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound) {
			return nil, jetstream.ErrKeyNotFound
		}
		return nil, fmt.Errorf("kvread: leader read of %s: %s (code %d)", key, resp.Error.Description, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("kvread: leader read of %s: empty answer", key)
	}
	m := resp.Message
	if len(m.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return nil, fmt.Errorf("kvread: leader read of %s: headers: %w", key, err)
		}
		if h.Get(kvOperationHeader) != "" || h.Get(jetstream.MarkerReasonHeader) != "" {
			return nil, jetstream.ErrKeyNotFound // a delete, purge or TTL marker
		}
	}
	return &entry{bucket: r.kv.Bucket(), key: key, value: m.Data, revision: m.Sequence, created: m.Time}, nil
}

// Limit is the largest value the bucket can hold: its maximum value size
// (the stream's maximum message size), or the connected server's maximum
// payload when that is smaller or the bucket sets none. A value of the
// bucket is never larger, so it is the right bound for decoding the
// bucket's own values, and a value larger than it cannot be written. The
// bucket's setting is read once; until that read succeeds the server's
// maximum payload is returned.
func (r *Reader) Limit(ctx context.Context) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limit > 0 {
		return r.limit
	}
	limit := int(r.nc.MaxPayload())
	st, err := r.kv.Status(ctx)
	if err != nil {
		return limit
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		if m := int(bs.StreamInfo().Config.MaxMsgSize); m > 0 && (m < limit || limit <= 0) {
			limit = m
		}
	}
	r.limit = limit
	return limit
}

// ask sends the leader read req, and sends it again while it goes
// unanswered for leaderTryTimeout, until ctx ends: only the stream's
// leader answers, and a request that reached none (the leader died, the
// next one is being elected) is never answered at all. Without a new try
// a caller with a long deadline would wait all of it through a failover
// of a few seconds.
func (r *Reader) ask(ctx context.Context, req []byte) (*nats.Msg, error) {
	for {
		tctx, cancel := context.WithTimeout(ctx, leaderTryTimeout)
		reply, err := r.nc.RequestWithContext(tctx, r.msgGet, req)
		cancel()
		if err == nil || ctx.Err() != nil {
			return reply, err
		}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			// Unanswered: try again at once.
		case errors.Is(err, nats.ErrNoResponders):
			// No server takes the API subject yet (one starting): wait a
			// little before the next try.
			t := time.NewTimer(leaderTryPause)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, err
			case <-t.C:
			}
		default:
			return nil, err
		}
	}
}

// leaderTimeout bounds a leader read whose context has no deadline.
const leaderTimeout = 5 * time.Second

// leaderTryTimeout is how long one try of a leader read waits for an
// answer before it is sent again; leaderTryPause the wait after a try no
// server took.
const (
	leaderTryTimeout = 2 * time.Second
	leaderTryPause   = 100 * time.Millisecond
)

// kvOperationHeader marks KV delete and purge messages.
const kvOperationHeader = "KV-Operation"

type msgGetRequest struct {
	LastBySubject string `json:"last_by_subj"`
}

type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// entry is a KV entry read from the leader.
type entry struct {
	bucket, key string
	value       []byte
	revision    uint64
	created     time.Time
}

var _ jetstream.KeyValueEntry = (*entry)(nil)

func (e *entry) Bucket() string                  { return e.bucket }
func (e *entry) Key() string                     { return e.key }
func (e *entry) Value() []byte                   { return e.value }
func (e *entry) Revision() uint64                { return e.revision }
func (e *entry) Created() time.Time              { return e.created }
func (e *entry) Delta() uint64                   { return 0 }
func (e *entry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }
