package embedded

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats-server/v2/server"
)

// slogServer hands the server's log lines to a slog.Logger: errors (fatal
// ones too) at error level, warnings at warn level, notices (the start-up
// banner, shutdown steps) at debug level. The server's own debug and trace
// lines are off.
//
// Without it an embedded server says nothing, and a store it cannot write
// to is invisible: it answers such a publish with no PubAck at all, so a
// client sees only "timeout waiting for ack" while the server's error
// ("JetStream failed to store a msg on stream ...") names the cause.
type slogServer struct{ log *slog.Logger }

var _ server.Logger = slogServer{}

func (l slogServer) emit(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

// Noticef logs at debug level.
func (l slogServer) Noticef(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }

// Warnf logs at warn level.
func (l slogServer) Warnf(format string, v ...any) { l.emit(slog.LevelWarn, format, v) }

// Fatalf logs at error level. Unlike the server's own logger it does not
// end the process: an embedded server's failure is its host's to handle.
func (l slogServer) Fatalf(format string, v ...any) { l.emit(slog.LevelError, format, v) }

// Errorf logs at error level.
func (l slogServer) Errorf(format string, v ...any) { l.emit(slog.LevelError, format, v) }

// Debugf is off (the server does not call it: see Start).
func (l slogServer) Debugf(string, ...any) {}

// Tracef is off (the server does not call it: see Start).
func (l slogServer) Tracef(string, ...any) {}
