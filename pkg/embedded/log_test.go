package embedded_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/embedded"
)

// TestLoggerGetsServerErrors: with Config.Logger, the server's errors
// reach it at error level (here, a client's rejected token), and its
// notices only at debug level, so a quiet logger stays quiet on start.
func TestLoggerGetsServerErrors(t *testing.T) {
	t.Parallel()
	var logs natstest.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Port: -1, Token: "right", Logger: log})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	require.Empty(t, logs.String(), "notices are debug records")

	_, err = nats.Connect(srv.ClientURL(), nats.Token("wrong"), nats.NoReconnect())
	require.Error(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `level=ERROR msg="`) &&
			strings.Contains(logs.String(), "authentication error")
	}, 10*time.Second, 10*time.Millisecond, "no error record for the rejected client; logs:\n%s", logs.String())

	var debug natstest.LogBuffer
	dlog := slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv2, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Port: -1, Logger: dlog})
	require.NoError(t, err)
	t.Cleanup(srv2.Stop)
	require.Contains(t, debug.String(), `level=DEBUG msg="Starting nats-server"`)
}
