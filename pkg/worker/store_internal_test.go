package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/connwatch"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/kvstore"
)

// unansweredStore's first Put waits for its context to end, as a request
// sent to a server that then died is never answered; the next succeeds.
type unansweredStore struct {
	kvstore.Store
	calls      atomic.Int32
	started    chan struct{}
	firstEnded chan error // the first call's context cause
}

func (s *unansweredStore) Put(ctx context.Context, _ string, _ []byte) error {
	if s.calls.Add(1) > 1 {
		return nil
	}
	close(s.started)
	<-ctx.Done()
	s.firstEnded <- context.Cause(ctx)
	return ctx.Err()
}

// TestStoreCallRetriedAfterReconnect: a task's store write in flight when
// the connection is lost ends at once and is sent again after the
// reconnect, so the task sees it succeed (no attempt spent, no timeout
// waited out).
func TestStoreCallRetriedAfterReconnect(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	w := connwatch.New(nc)
	t.Cleanup(w.Stop)
	inner := &unansweredStore{started: make(chan struct{}), firstEnded: make(chan error, 1)}
	s := connStore{Store: inner, conn: w, timeout: time.Hour}

	done := make(chan error, 1)
	go func() { done <- s.Put(context.Background(), "k", []byte("v")) }()
	natstest.Recv(t, inner.started, 10*time.Second)
	require.NoError(t, nc.ForceReconnect())
	require.ErrorIs(t, natstest.Recv(t, inner.firstEnded, 10*time.Second), connwatch.ErrLost)
	require.NoError(t, natstest.Recv(t, done, 10*time.Second))
	require.EqualValues(t, 2, inner.calls.Load())
}

// failingStore fails every call with err.
type failingStore struct {
	kvstore.Store
	calls atomic.Int32
	err   error
}

func (s *failingStore) Get(ctx context.Context, _ string) ([]byte, error) {
	s.calls.Add(1)
	if _, ok := ctx.Deadline(); !ok {
		return nil, errors.New("no deadline")
	}
	return nil, s.err
}

// TestStoreCallErrorPassesThrough: an error that is not a lost connection
// is returned at once, from one try bounded by the store's timeout.
func TestStoreCallErrorPassesThrough(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	w := connwatch.New(nc)
	t.Cleanup(w.Stop)
	inner := &failingStore{err: kvstore.ErrNotFound}
	s := connStore{Store: inner, conn: w, timeout: time.Minute}
	_, err = s.Get(context.Background(), "k")
	require.ErrorIs(t, err, kvstore.ErrNotFound)
	require.EqualValues(t, 1, inner.calls.Load())
}
