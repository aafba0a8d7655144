package cli

import (
	"io"
	"log/slog"
	"time"

	"github.com/lmittmann/tint"
)

// newTextHandler is the human-readable handler for terminals: tint, in
// colour unless noColor.
func newTextHandler(w io.Writer, level slog.Level, noColor bool) slog.Handler {
	return tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: time.TimeOnly, NoColor: noColor})
}
