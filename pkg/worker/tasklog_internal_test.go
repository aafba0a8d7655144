package worker

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/protocol"
)

func TestTaskLog(t *testing.T) {
	t.Parallel()
	cmd := &protocol.TaskCommand{RunID: "r1", Workflow: "wf", State: "work"}
	newWorker := func(buf *bytes.Buffer, level slog.Level) *Worker {
		return &Worker{log: slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level})).With("component", "worker")}
	}

	t.Run("a record carries the task's attributes after its own", func(t *testing.T) {
		var buf bytes.Buffer
		newWorker(&buf, slog.LevelInfo).taskLog(cmd, 2).Info("hello", "k", "v")
		var got map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
		require.Equal(t, map[string]any{"component": "worker", "k": "v", "run_id": "r1", "workflow": "wf",
			"state": "work", "attempt": float64(2)}, without(got, "time", "level", "msg"))
		require.Less(t, strings.Index(buf.String(), `"k"`), strings.Index(buf.String(), `"run_id"`))
	})

	t.Run("levels below the worker's are dropped", func(t *testing.T) {
		var buf bytes.Buffer
		newWorker(&buf, slog.LevelWarn).taskLog(cmd, 1).Info("quiet")
		require.Zero(t, buf.Len())
	})

	t.Run("With and WithGroup keep the task's attributes outside the group", func(t *testing.T) {
		var buf bytes.Buffer
		newWorker(&buf, slog.LevelInfo).taskLog(cmd, 1).With("a", 1).WithGroup("g").Info("m", "b", 2)
		var got map[string]any
		require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
		require.Equal(t, map[string]any{"component": "worker", "run_id": "r1", "workflow": "wf", "state": "work",
			"attempt": float64(1), "a": float64(1), "g": map[string]any{"b": float64(2)}}, without(got, "time", "level", "msg"))
	})

	t.Run("conforms to slog's handler rules", func(t *testing.T) {
		var buf bytes.Buffer
		h := newWorker(&buf, slog.LevelInfo).taskLog(cmd, 1).Handler()
		require.NoError(t, slogtest.TestHandler(h, func() []map[string]any {
			var out []map[string]any
			for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				m := map[string]any{}
				require.NoError(t, json.Unmarshal(line, &m))
				out = append(out, m)
			}
			return out
		}))
	})
}

func without(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		delete(m, k)
	}
	return m
}

// benchLogger keeps the benchmarked loggers on the heap, as in a task.
var benchLogger *slog.Logger

// BenchmarkTaskLog compares the task logger with slog.Logger.With, which
// the worker used per task before.
func BenchmarkTaskLog(b *testing.B) {
	w := &Worker{log: slog.New(slog.NewJSONHandler(io.Discard, nil)).With("component", "worker", "worker_id", "w1")}
	cmd := &protocol.TaskCommand{RunID: "r7a7a7a7a7a7a7a7a7a7a7a7", Workflow: "one_task", State: "work"}
	b.Run("taskLog", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchLogger = w.taskLog(cmd, 1)
		}
	})
	b.Run("With", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchLogger = w.log.With("run_id", cmd.RunID, "workflow", cmd.Workflow, "state", cmd.State, "attempt", 1)
		}
	})
}
