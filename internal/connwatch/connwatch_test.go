package connwatch_test

import (
	"context"
	"errors"
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
