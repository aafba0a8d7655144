// Package kvwatch reads the current entries of a JetStream KV bucket: the
// values a new watch delivers before its end-of-initial-values marker.
// Client listings and the worker's join reads share it.
//
// The marker alone is not enough to know the reading is over. nats.go sends
// it once the watch has received as many messages as its consumer had
// pending when it was created, or one with nothing pending after it. A
// message that is removed from the stream after the consumer was created
// and before it was delivered (an entry whose TTL, the bucket's max age, ran
// out; a deleted message) is counted but never delivered: when it is the
// last, the marker never comes. So when the watch has been quiet for a
// while, [Current] asks the stream whether any message after the last one
// delivered is left; if none is, every current entry has been read.
package kvwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrEndedEarly is returned when the watch closes before every current
// entry was read.
var ErrEndedEarly = errors.New("kvwatch: the watch ended before every current entry was read")

// Quiet is how long a watch loading its initial values may deliver nothing
// before [Current] asks the stream whether anything is left to deliver
// ([Left.After]). It only delays a read whose last messages were removed
// before they were delivered.
const Quiet = 200 * time.Millisecond

// requestTimeout bounds that question when ctx has no deadline.
const requestTimeout = 5 * time.Second

// Current calls fn with the current value of every key of kv matching keys
// (a key or a wildcard pattern, as [jetstream.KeyValue.Watch] takes it);
// deleted and purged keys are left out. It returns once every current entry
// was passed to fn, ctx's error if ctx ends first, [ErrEndedEarly] if the
// watch closes, or fn's first error. An entry written while Current runs may
// or may not be passed to fn. js is the JetStream context kv was opened
// with; it asks the stream what is left to deliver (a message get, which
// the stream's leader answers). opts are added to the watch's
// (jetstream.MetaOnly for keys without values, say).
func Current(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, keys string,
	fn func(jetstream.KeyValueEntry) error, opts ...jetstream.WatchOpt) error {
	w, err := kv.Watch(ctx, keys, opts...)
	if err != nil {
		return err
	}
	// The watch is stopped and drained in every case: its callback blocks
	// on a full updates channel, and an early return must leave no
	// goroutine behind.
	defer func() {
		_ = w.Stop()
		go func() {
			for range w.Updates() {
			}
		}()
	}()
	left := NewLeft(js, kv.Bucket(), keys)
	var last uint64 // the stream sequence of the last message delivered
	timer := time.NewTimer(Quiet)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			more, err := left.After(ctx, last)
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
			timer.Reset(Quiet)
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return ErrEndedEarly
			case e == nil:
				return nil
			}
			last = max(last, e.Revision())
			if e.Operation() == jetstream.KeyValuePut {
				if err := fn(e); err != nil {
					return err
				}
			}
			timer.Reset(Quiet)
		}
	}
}

// Left asks a bucket's stream leader whether a message matching a watch's
// keys is stored after a sequence: whether a watch that has delivered up to
// that sequence has anything left to deliver. A long-lived watch that waits
// for its end-of-initial-values marker uses it as [Current] does.
type Left struct {
	nc      *nats.Conn
	bucket  string
	subject string // the keys' subject: "$KV.<bucket>.<keys>"
	msgGet  string // the leader's STREAM.MSG.GET subject of the bucket's stream
}

// NewLeft asks about bucket's keys (a key or a wildcard pattern), through
// js. It does no I/O.
func NewLeft(js jetstream.JetStream, bucket, keys string) Left {
	o := js.Options()
	return Left{nc: js.Conn(), bucket: bucket, subject: protocol.KVSubject(bucket, keys),
		msgGet: protocol.StreamMsgGetSubject(protocol.JSAPIPrefix(o.Domain, o.APIPrefix), layout.KVStream(bucket))}
}

type msgGetRequest struct {
	Seq           uint64 `json:"seq"`
	NextBySubject string `json:"next_by_subj"`
}

// msgGetResponse is the part of a message get reply read here.
type msgGetResponse struct {
	Error *struct {
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
	Message *struct {
		Sequence uint64 `json:"seq"`
	} `json:"message,omitempty"`
}

// After reports whether a message matching the keys is stored after
// sequence seq. A message that is not the last of its key counts: the key's
// last message comes after it and the watch has yet to deliver it.
func (l Left) After(ctx context.Context, seq uint64) (bool, error) {
	ctx, cancel := deadline.Default(ctx, requestTimeout)
	defer cancel()
	req, err := json.Marshal(msgGetRequest{Seq: seq + 1, NextBySubject: l.subject})
	if err != nil {
		return false, err
	}
	reply, err := l.nc.RequestWithContext(ctx, l.msgGet, req)
	if err != nil {
		return false, fmt.Errorf("kvwatch: ask bucket %s what is left to read: %w", l.bucket, err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return false, fmt.Errorf("kvwatch: ask bucket %s what is left to read: %w", l.bucket, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == int(jetstream.JSErrCodeMessageNotFound):
		return false, nil
	case resp.Error != nil:
		return false, fmt.Errorf("kvwatch: ask bucket %s what is left to read: %s (code %d)",
			l.bucket, resp.Error.Description, resp.Error.ErrCode)
	}
	return resp.Message != nil, nil
}
