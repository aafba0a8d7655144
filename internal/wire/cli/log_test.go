package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewHandlerFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		format   string
		terminal bool
		wantJSON bool
	}{
		{"auto on a terminal", "auto", true, false},
		{"auto off a terminal", "auto", false, true},
		{"default on a terminal", "", true, false},
		{"default off a terminal", "", false, true},
		{"text on a terminal", "text", true, false},
		{"text off a terminal", "text", false, false},
		{"json on a terminal", "json", true, true},
		{"json off a terminal", "JSON", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			// noColor: tint's colour codes would split "k=v".
			h, err := newHandler(&buf, LogConfig{Format: tc.format}, tc.terminal, true)
			require.NoError(t, err)
			slog.New(h).Info("hello", "k", "v")
			line := buf.String()
			var obj map[string]any
			isJSON := json.Unmarshal([]byte(line), &obj) == nil
			require.Equal(t, tc.wantJSON, isJSON, line)
			require.Contains(t, line, "hello")
			if isJSON {
				require.Equal(t, "v", obj["k"])
			} else {
				require.Contains(t, line, "k=v")
			}
		})
	}
}

func TestNewHandlerLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level     string
		wantDebug bool
		wantInfo  bool
		wantWarn  bool
	}{
		{"", false, true, true},
		{"debug", true, true, true},
		{"info", false, true, true},
		{"WARN", false, false, true},
		{"warning", false, false, true},
		{"error", false, false, false},
	}
	for _, tc := range tests {
		t.Run("level="+tc.level, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			h, err := newHandler(&buf, LogConfig{Level: tc.level, Format: "json"}, false, false)
			require.NoError(t, err)
			l := slog.New(h)
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			out := buf.String()
			require.Equal(t, tc.wantDebug, strings.Contains(out, `"msg":"d"`))
			require.Equal(t, tc.wantInfo, strings.Contains(out, `"msg":"i"`))
			require.Equal(t, tc.wantWarn, strings.Contains(out, `"msg":"w"`))
			require.Contains(t, out, `"msg":"e"`)
		})
	}
}

func TestNewLoggerErrors(t *testing.T) {
	t.Parallel()
	_, err := NewLogger(io.Discard, LogConfig{Level: "loud"})
	require.EqualError(t, err, `-log-level: unknown level "loud" (want debug, info, warn or error)`)
	_, err = NewLogger(io.Discard, LogConfig{Format: "xml"})
	require.EqualError(t, err, `-log-format: unknown format "xml" (want auto, text or json)`)
}

func TestNewLoggerNotTerminal(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	l, err := NewLogger(f, LogConfig{})
	require.NoError(t, err)
	l.Info("to a file")
	data, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, json.Valid(bytes.TrimSpace(data)), "a file gets JSON: %s", data)
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	require.False(t, isTerminal(&bytes.Buffer{}))
	f, err := os.Create(filepath.Join(t.TempDir(), "plain"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	require.False(t, isTerminal(f))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer func() { _ = r.Close() }()
	defer func() { _ = w.Close() }()
	require.False(t, isTerminal(w))
	// /dev/null is a character device, as a terminal is.
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer func() { _ = null.Close() }()
	require.True(t, isTerminal(null))
}

func TestLogConfigFlags(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var cfg LogConfig
	cfg.RegisterFlags(fs)
	require.Equal(t, LogConfig{Level: "info", Format: "auto"}, cfg)
	require.NoError(t, fs.Parse([]string{"-log-level", "debug", "--log-format=json"}))
	require.Equal(t, LogConfig{Level: "debug", Format: "json"}, cfg)
}

// TestJSONDurations: a duration in a JSON log line reads as Go writes it
// ("250ms"), not as integer nanoseconds (250000000), in both ways to get
// JSON.
func TestJSONDurations(t *testing.T) {
	t.Parallel()
	for _, format := range []string{LogFormatJSON, LogFormatAuto} {
		var buf bytes.Buffer
		h, err := newHandler(&buf, LogConfig{Format: format}, false, true)
		require.NoError(t, err)
		slog.New(h).Warn("input will be retried", "retry_in", 250*time.Millisecond, "delivery", 3)
		var line map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
		require.Equal(t, "250ms", line["retry_in"], format)
		require.Equal(t, float64(3), line["delivery"], format)
	}
}
