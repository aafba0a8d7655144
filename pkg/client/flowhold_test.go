package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/provision"
)

// flowHold is a nats.CustomDialer whose connections keep the client's
// replies to JetStream flow-control requests (PUB $JS.FC.…) to themselves
// until release. A push consumer that has sent as many bytes as its flow
// control allows then delivers nothing more: what a slow client or a busy
// server looks like to the server, made to last as long as a test needs.
type flowHold struct {
	held chan struct{} // receives once per reply held

	mu       sync.Mutex // serializes writes to conns with release
	released bool
	pending  []byte // held replies, in order
	conns    []net.Conn
}

func newFlowHold() *flowHold { return &flowHold{held: make(chan struct{}, 64)} }

// Dial implements nats.CustomDialer.
func (h *flowHold) Dial(network, address string) (net.Conn, error) {
	c, err := (&net.Dialer{}).Dial(network, address)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	return &holdConn{Conn: c, h: h}, nil
}

// release sends the held replies and lets every later one through.
func (h *flowHold) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = true
	if len(h.pending) > 0 && len(h.conns) > 0 {
		_, _ = h.conns[len(h.conns)-1].Write(h.pending)
	}
	h.pending = nil
}

type holdConn struct {
	net.Conn
	h *flowHold
}

func (c *holdConn) Write(b []byte) (int, error) {
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	out := b
	if !h.released {
		var cut []byte
		out, cut = cutFlowReplies(b)
		if len(cut) > 0 {
			h.pending = append(h.pending, cut...)
			select {
			case h.held <- struct{}{}:
			default:
			}
		}
	}
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// cutFlowReplies splits the protocol operations in b into the flow-control
// replies (cut) and the rest. An operation split across two writes is left
// in the rest.
func cutFlowReplies(b []byte) (rest, cut []byte) {
	const op = "PUB $JS.FC."
	for {
		i := bytes.Index(b, []byte(op))
		if i < 0 || (i > 0 && b[i-1] != '\n') {
			return append(rest, b...), cut
		}
		eol := bytes.Index(b[i:], []byte("\r\n"))
		if eol < 0 {
			return append(rest, b...), cut
		}
		fields := strings.Fields(string(b[i : i+eol]))
		size, err := strconv.Atoi(fields[len(fields)-1])
		end := i + eol + 2 + size + 2
		if err != nil || end > len(b) {
			return append(rest, b...), cut
		}
		rest = append(rest, b[:i]...)
		cut = append(cut, b[i:end]...)
		b = b[end:]
	}
}

// expiringBehindHold recreates bucket (of the "exp" deployment) with a 3 s
// TTL — long enough for a listing to start before the large entries
// expire: they must be delivered for the server to stall — and puts three
// entries that together exceed a consumer's first flow-control window
// (2 MiB), then key with value. It returns a client whose connection holds
// back its flow-control replies, so a listing of the bucket stalls before
// key (a receive on hold.held says it has), and expire, which waits until
// key's TTL has run out and then releases the hold.
func expiringBehindHold(t *testing.T, ctx context.Context, bucket, key string, value []byte) (cl *client.Client, hold *flowHold, expire func()) {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{Prefix: "exp"})
	_, js := srv.Connect(t)
	require.NoError(t, js.DeleteKeyValue(ctx, bucket))
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: 3 * time.Second})
	require.NoError(t, err)
	large := make([]byte, 800<<10)
	for i := range 3 {
		_, err := kv.Put(ctx, fmt.Sprintf("large-%d", i), large)
		require.NoError(t, err)
	}
	_, err = kv.Put(ctx, key, value)
	require.NoError(t, err)

	hold = newFlowHold()
	lnc, err := nats.Connect(srv.URL, nats.SetCustomDialer(hold))
	require.NoError(t, err)
	t.Cleanup(lnc.Close)
	cl, err = client.New(lnc, client.Config{Prefix: "exp"})
	require.NoError(t, err)
	return cl, hold, func() {
		natstest.WaitFor(t, 10*time.Second, key+" to expire", func() bool {
			_, err := kv.Get(ctx, key)
			return errors.Is(err, jetstream.ErrKeyNotFound)
		})
		hold.release()
	}
}
