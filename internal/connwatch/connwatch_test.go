package connwatch_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/connwatch"
	"github.com/cano-nats/cano/internal/natstest"
)

func TestZeroWatchBindsOnlyTheTimeout(t *testing.T) {
	t.Parallel()
	var w *connwatch.Watch
	ctx, cancel := w.Bind(context.Background(), time.Hour)
	defer cancel()
	require.NoError(t, ctx.Err())
	w.Stop()
	(&connwatch.Watch{}).Stop()
}

// watched starts a server and a connection to it, reconnecting every
// 50 ms for ever, that a Watch watches.
func watched(t *testing.T) (*natstest.Server, *nats.Conn, *connwatch.Watch) {
	t.Helper()
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	w := connwatch.New(nc)
	t.Cleanup(w.Stop)
	return srv, nc, w
}

// closed reports whether ch is closed (without waiting).
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed fails the test with what unless ch is closed within 10 s.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

func TestRequestInFlightEndsWhenConnectionIsLost(t *testing.T) {
	t.Parallel()
	srv, nc, w := watched(t)

	// A request nobody answers (a subscriber that keeps quiet), as a
	// request to a server that died is never answered.
	sub, err := nc.SubscribeSync("quiet")
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())

	ctx, cancel := w.Bind(context.Background(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := nc.RequestWithContext(ctx, "quiet", nil)
		errc <- err
	}()
	_, err = sub.NextMsg(10 * time.Second) // the request is out
	require.NoError(t, err)
	srv.Stop() // the server dies: nats.go keeps a plain request waiting
	select {
	case err := <-errc:
		require.Error(t, err)
		require.True(t, errors.Is(context.Cause(ctx), connwatch.ErrLost), "err %v, cause %v", err, context.Cause(ctx))
	case <-time.After(30 * time.Second):
		t.Fatal("the request outlived the connection")
	}

	// Contexts bound after the loss are not ended by it.
	ctx2, cancel2 := w.Bind(context.Background(), time.Minute)
	defer cancel2()
	require.NoError(t, ctx2.Err())
}

func TestZeroWatchCountsAsConnected(t *testing.T) {
	t.Parallel()
	var w *connwatch.Watch
	require.True(t, closed(w.Connected()), "a nil Watch must count as connected")
	ctx, cancel := w.BindReconnect(context.Background(), time.Hour)
	defer cancel()
	require.NoError(t, ctx.Err())
}

// TestPullEndsWhenConnectionIsBack: a context from BindReconnect outlives
// the loss of the connection and ends when it is back (a pull request sent
// to the old server is forgotten by the new one); Connected is open during
// the outage and closed once reconnected.
func TestPullEndsWhenConnectionIsBack(t *testing.T) {
	t.Parallel()
	_, nc, w := watched(t)
	require.True(t, closed(w.Connected()), "Connected must be closed while connected")

	lost := make(chan struct{})
	var once sync.Once
	nc.SetDisconnectErrHandler(func(*nats.Conn, error) { once.Do(func() { close(lost) }) })
	pull, cancel := w.BindReconnect(context.Background(), time.Minute)
	defer cancel()
	inFlight, cancelInFlight := w.Bind(context.Background(), time.Minute)
	defer cancelInFlight()
	require.NoError(t, nc.ForceReconnect())

	natstest.Recv(t, lost, 10*time.Second)
	waitClosed(t, inFlight.Done(), "a request in flight outlived the connection")
	waitClosed(t, pull.Done(), "a pull bound with BindReconnect outlived the reconnect")
	require.ErrorIs(t, context.Cause(pull), connwatch.ErrReconnected)
	waitClosed(t, w.Connected(), "Connected not closed after the reconnect")
	require.True(t, nc.IsConnected())

	// Contexts bound after the reconnect are not ended by it.
	pull2, cancel2 := w.BindReconnect(context.Background(), time.Minute)
	defer cancel2()
	require.NoError(t, pull2.Err())
}

// TestConnectedWaitsForTheServer: while the server is down, Connected stays
// open.
func TestConnectedWaitsForTheServer(t *testing.T) {
	t.Parallel()
	srv, _, w := watched(t)
	ctx, cancel := w.BindReconnect(context.Background(), time.Minute)
	defer cancel()
	srv.Stop()
	natstest.WaitFor(t, 10*time.Second, "Connected open after the server stopped", func() bool {
		return !closed(w.Connected())
	})
	require.NoError(t, ctx.Err(), "a loss alone must not end a BindReconnect context")
}
