package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Log formats accepted by -log-format.
const (
	LogFormatAuto = "auto" // text on a terminal, JSON otherwise
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// LogConfig configures [NewLogger]. The zero value logs at info level in
// the auto format.
type LogConfig struct {
	// Level is debug, info, warn or error (flag -log-level). Defaults to info.
	Level string
	// Format is auto, text or json (flag -log-format). Defaults to auto:
	// human-readable text when the output is a terminal, JSON otherwise.
	Format string
}

// RegisterFlags registers -log-level and -log-format on fs.
func (c *LogConfig) RegisterFlags(fs *flag.FlagSet) {
	if c.Level == "" {
		c.Level = "info"
	}
	if c.Format == "" {
		c.Format = LogFormatAuto
	}
	fs.StringVar(&c.Level, "log-level", c.Level, "log `level`: debug, info, warn or error")
	fs.StringVar(&c.Format, "log-format", c.Format, "log `format`: auto (text on a terminal, JSON otherwise), text or json")
}

// NewLogger returns a logger writing to w (normally os.Stderr) as cfg
// says. With format auto, a terminal gets human-readable text and anything
// else (a pipe, a file, a log collector) gets one JSON object per line.
// Format text always writes text, in colour only on a terminal and when
// NO_COLOR is unset. An unknown level or format is an error naming the
// flag.
func NewLogger(w io.Writer, cfg LogConfig) (*slog.Logger, error) {
	h, err := newHandler(w, cfg, isTerminal(w), os.Getenv("NO_COLOR") != "")
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}

func newHandler(w io.Writer, cfg LogConfig, terminal, noColor bool) (slog.Handler, error) {
	level, err := parseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	format := strings.ToLower(cfg.Format)
	switch format {
	case "", LogFormatAuto:
		if terminal {
			return newTextHandler(w, level, noColor), nil
		}
		return newJSONHandler(w, level), nil
	case LogFormatText:
		return newTextHandler(w, level, noColor || !terminal), nil
	case LogFormatJSON:
		return newJSONHandler(w, level), nil
	default:
		return nil, fmt.Errorf("-log-format: unknown format %q (want auto, text or json)", cfg.Format)
	}
}

// newJSONHandler writes one JSON object a line. Durations are written as
// Go writes them ("250ms", "5m0s"), not as integer nanoseconds.
func newJSONHandler(w io.Writer, level slog.Level) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}})
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("-log-level: unknown level %q (want debug, info, warn or error)", s)
	}
}

// isTerminal reports whether w is a character device (a terminal), without
// a dependency on a terminal package.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
