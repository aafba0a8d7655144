package cli

import (
	"io"
	"log/slog"
	"time"
)

// newTextHandler is the human-readable handler for terminals.
//
// TODO: use tint (github.com/lmittmann/tint v1.2.1, listed in issue 2) once
// it is in go.mod:
//
//	return tint.NewHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: noColor})
func newTextHandler(w io.Writer, level slog.Level, noColor bool) slog.Handler {
	_ = noColor
	return slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				a.Value = slog.StringValue(a.Value.Time().Format(time.TimeOnly))
			}
			return a
		},
	})
}
