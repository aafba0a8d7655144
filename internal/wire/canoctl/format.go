package canoctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cano-nats/cano/internal/wire/pretty"
	"github.com/cano-nats/cano/pkg/fsm"
)

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 { // a key-value table has none (no blank first line)
		t.row(anys(header)...)
	}
	return t
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "\t", " "), "\n", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// printList prints a list command's items: with --json, the array of
// their views; otherwise the line none (there are none, and what to do)
// or a table of header with one row per item.
func printList[T, V any](e *env, items []T, view func(T) V, none string, header []string, row func(T) []any) error {
	if e.c.json {
		views := make([]V, 0, len(items))
		for _, it := range items {
			views = append(views, view(it))
		}
		return writeJSON(e.out, views)
	}
	if len(items) == 0 {
		fmt.Fprintln(e.out, none)
		return nil
	}
	t := newTable(e.out, header...)
	for _, it := range items {
		t.row(row(it)...)
	}
	return t.flush()
}

// writeJSON prints v as indented JSON. Like everything canoctl writes as
// JSON, it leaves <, > and & as they are (encoding/json escapes them for
// HTML by default: "<nil>" would show as "\u003cnil\u003e").
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine prints v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// fmtTime formats t for a table: "-" for the zero time, the clock time
// with milliseconds for today, the date and time otherwise.
func fmtTime(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	y1, m1, d1 := t.Date()
	y2, m2, d2 := now.Date()
	if y1 == y2 && m1 == m2 && d1 == d2 {
		return t.Format("15:04:05.000")
	}
	return t.Format("2006-01-02 15:04:05")
}

// fmtDur formats d rounded for people: 1.234s, 15ms, 2m3s.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// since is the time from a to b, 0 when either is zero.
func since(a, b time.Time) time.Duration {
	if a.IsZero() || b.IsZero() {
		return 0
	}
	return b.Sub(a)
}

// timePtr is nil for the zero time, so JSON leaves it out.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// errorView is an error for JSON: its message, and the state context when
// it has one.
type errorView struct {
	Message string   `json:"message"`
	State   string   `json:"state,omitempty"`
	Attempt uint32   `json:"attempt,omitempty"`
	Path    []string `json:"path,omitempty"`
}

func viewError(err error) *errorView {
	if err == nil {
		return nil
	}
	v := &errorView{Message: err.Error()}
	var se *fsm.StateError
	if errors.As(err, &se) {
		v.State, v.Attempt, v.Path = se.State, se.Attempt, se.Path
	}
	return v
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// truncate cuts s to n runes with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// jsonText renders a decoded value as compact JSON, falling back to Go
// syntax when it does not marshal.
func jsonText(v any) string {
	return pretty.JSON(pretty.Value(v))
}
