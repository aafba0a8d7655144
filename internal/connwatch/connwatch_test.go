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

func TestRequestInFlightEndsWhenConnectionIsLost(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	w := connwatch.New(nc)
	t.Cleanup(w.Stop)

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
	select {
	case <-w.Connected():
	default:
		t.Fatal("a nil Watch must count as connected")
	}
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
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	w := connwatch.New(nc)
	t.Cleanup(w.Stop)
	select {
	case <-w.Connected():
	default:
		t.Fatal("Connected must be closed while connected")
	}

	lost := make(chan struct{})
	var once sync.Once
	nc.SetDisconnectErrHandler(func(*nats.Conn, error) { once.Do(func() { close(lost) }) })
	pull, cancel := w.BindReconnect(context.Background(), time.Minute)
	defer cancel()
	inFlight, cancelInFlight := w.Bind(context.Background(), time.Minute)
	defer cancelInFlight()
	require.NoError(t, nc.ForceReconnect())

	natstest.Recv(t, lost, 10*time.Second)
	select {
	case <-inFlight.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a request in flight outlived the connection")
	}
	select {
	case <-pull.Done():
		require.ErrorIs(t, context.Cause(pull), connwatch.ErrReconnected)
	case <-time.After(10 * time.Second):
		t.Fatal("a pull bound with BindReconnect outlived the reconnect")
	}
	select {
	case <-w.Connected():
	case <-time.After(10 * time.Second):
		t.Fatal("Connected not closed after the reconnect")
	}
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
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	w := connwatch.New(nc)
	t.Cleanup(w.Stop)
	ctx, cancel := w.BindReconnect(context.Background(), time.Minute)
	defer cancel()
	srv.Stop()
	natstest.WaitFor(t, 10*time.Second, "Connected open after the server stopped", func() bool {
		select {
		case <-w.Connected():
			return false
		default:
			return true
		}
	})
	require.NoError(t, ctx.Err(), "a loss alone must not end a BindReconnect context")
}
