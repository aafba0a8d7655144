package client

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sample builds a set: run r%02d created at second i, workflow a or b
// alternating, status cycling running, completed, failed.
func sample(n int) *runSet {
	s := newRunSet(0)
	sts := []RunStatus{RunRunning, RunCompleted, RunFailed}
	for i := range n {
		wf := "a"
		if i%2 == 1 {
			wf = "b"
		}
		s.put(RunSummary{ID: fmt.Sprintf("r%02d", i), Workflow: wf, Status: sts[i%3], CreatedAt: time.Unix(int64(i), 0)})
	}
	return s
}

func ids(p RunPage) string {
	var out []string
	for _, r := range p.Runs {
		out = append(out, r.ID)
	}
	return strings.Join(out, " ")
}

func TestRunSetPage(t *testing.T) {
	t.Parallel()
	s := sample(12) // r00..r11
	tests := []struct {
		name     string
		q        RunQuery
		want     string
		matching int
		total    int
		counts   map[RunStatus]int
	}{
		{"first page, newest first", RunQuery{Limit: 3}, "r11 r10 r09", 12, 12,
			map[RunStatus]int{RunRunning: 4, RunCompleted: 4, RunFailed: 4}},
		{"second page", RunQuery{Offset: 3, Limit: 3}, "r08 r07 r06", 12, 12, nil},
		{"last partial page", RunQuery{Offset: 10, Limit: 3}, "r01 r00", 12, 12, nil},
		{"beyond the end", RunQuery{Offset: 12, Limit: 3}, "", 12, 12, nil},
		{"workflow", RunQuery{Workflow: "b", Limit: 3}, "r11 r09 r07", 6, 6,
			map[RunStatus]int{RunRunning: 2, RunCompleted: 2, RunFailed: 2}},
		{"status", RunQuery{Status: RunFailed, Limit: 10}, "r11 r08 r05 r02", 4, 12, nil},
		{"workflow and status", RunQuery{Workflow: "a", Status: RunRunning, Limit: 10}, "r06 r00", 2, 6, nil},
		{"since", RunQuery{Since: time.Unix(9, 0), Limit: 10}, "r11 r10 r09", 3, 3,
			map[RunStatus]int{RunRunning: 1, RunCompleted: 1, RunFailed: 1}},
		{"since and status", RunQuery{Since: time.Unix(6, 0), Status: RunRunning, Limit: 10}, "r09 r06", 2, 6, nil},
		{"since, second page", RunQuery{Since: time.Unix(6, 0), Offset: 4, Limit: 4}, "r07 r06", 6, 6, nil},
		{"unknown workflow", RunQuery{Workflow: "zzz", Limit: 3}, "", 0, 0, map[RunStatus]int{}},
		{"counts only", RunQuery{}, "", 12, 12, nil},
		{"cancelled none", RunQuery{Status: RunCancelled, Limit: 3}, "", 0, 12, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := s.page(tc.q)
			require.Equal(t, tc.want, ids(p))
			require.Equal(t, tc.matching, p.Matching)
			require.Equal(t, tc.total, p.Total)
			if tc.counts != nil {
				require.Equal(t, tc.counts, p.Counts)
			}
			require.Equal(t, 12, p.Held)
		})
	}
}

func TestRunSetUpdates(t *testing.T) {
	t.Parallel()
	s := sample(6)
	// A status change moves the run between lists, keeping its place.
	s.put(RunSummary{ID: "r03", Workflow: "b", Status: RunCancelled, CreatedAt: time.Unix(3, 0), UpdatedAt: time.Unix(20, 0), Error: "stop"})
	p := s.page(RunQuery{Status: RunCancelled, Limit: 5})
	require.Equal(t, "r03", ids(p))
	require.Equal(t, time.Unix(20, 0), p.Runs[0].EndedAt)
	require.Equal(t, "stop", p.Runs[0].Error)
	require.Equal(t, "r05 r04 r03 r02 r01 r00", ids(s.page(RunQuery{Limit: 10})))
	require.Equal(t, 0, s.page(RunQuery{Status: RunRunning, Workflow: "b"}).Matching, "r03 left running")
	// A state change in the same status stays in place.
	s.put(RunSummary{ID: "r00", Workflow: "a", Status: RunRunning, State: "next", CreatedAt: time.Unix(0, 0)})
	require.Equal(t, "next", s.page(RunQuery{Offset: 5, Limit: 1}).Runs[0].State)
	require.True(t, s.page(RunQuery{Offset: 5, Limit: 1}).Runs[0].EndedAt.IsZero(), "running: not ended")
	// Deletes: the oldest, a middle one, the newest, an unknown one.
	for _, id := range []string{"r00", "r02", "r05", "nope"} {
		s.delete(id)
	}
	require.Equal(t, "r04 r03 r01", ids(s.page(RunQuery{Limit: 10})))
	require.Equal(t, map[RunStatus]int{RunCompleted: 2, RunCancelled: 1}, s.page(RunQuery{}).Counts)
	// A scheduled run keeps its start time, also when it starts.
	start := time.Unix(50, 0)
	s.put(RunSummary{ID: "r06", Workflow: "a", Status: RunScheduled, CreatedAt: time.Unix(6, 0), StartAt: start})
	require.Equal(t, start, s.page(RunQuery{Status: RunScheduled, Limit: 1}).Runs[0].StartAt)
	s.put(RunSummary{ID: "r06", Workflow: "a", Status: RunRunning, CreatedAt: time.Unix(6, 0), StartAt: start})
	require.Equal(t, start, s.page(RunQuery{Status: RunRunning, Limit: 1}).Runs[0].StartAt)
	s.delete("r06")
	// An out-of-order insert lands in place.
	s.put(RunSummary{ID: "r02", Workflow: "a", Status: RunFailed, CreatedAt: time.Unix(2, 0)})
	require.Equal(t, "r04 r03 r02 r01", ids(s.page(RunQuery{Limit: 10})))
}

func TestRunSetCap(t *testing.T) {
	t.Parallel()
	s := newRunSet(3)
	for i := range 5 {
		s.put(RunSummary{ID: fmt.Sprintf("r%02d", i), Workflow: "a", Status: RunCompleted, CreatedAt: time.Unix(int64(i), 0)})
	}
	p := s.page(RunQuery{Limit: 10})
	require.Equal(t, "r04 r03 r02", ids(p))
	require.EqualValues(t, 2, p.Dropped)
	require.Equal(t, time.Unix(1, 0), p.DroppedBefore)
	// An update of a dropped run (older than what was dropped) stays out.
	s.put(RunSummary{ID: "r00", Workflow: "a", Status: RunFailed, CreatedAt: time.Unix(0, 0)})
	require.Equal(t, "r04 r03 r02", ids(s.page(RunQuery{Limit: 10})))
	// After a delete there is room again.
	s.delete("r03")
	s.put(RunSummary{ID: "r05", Workflow: "a", Status: RunRunning, CreatedAt: time.Unix(5, 0)})
	require.Equal(t, "r05 r04 r02", ids(s.page(RunQuery{Limit: 10})))
}

func TestTruncateError(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", truncateError("short"))
	long := strings.Repeat("é", RunSummaryErrorMax) // 2 bytes each
	got := truncateError(long)
	require.LessOrEqual(t, len(got), RunSummaryErrorMax)
	require.True(t, strings.HasSuffix(got, "…"))
	require.True(t, strings.HasPrefix(long, strings.TrimSuffix(got, "…")))
}

// BenchmarkRunIndexPage measures a page of 50 at 10,000 runs over 50
// workflows: go test -run '^$' -bench RunIndex ./pkg/client
func BenchmarkRunIndexPage(b *testing.B) {
	s := newRunSet(0)
	sts := RunStatuses()
	for i := range 10_000 {
		s.put(RunSummary{ID: fmt.Sprintf("run-%08d", i), Workflow: fmt.Sprintf("wf_%02d", i%50), Status: sts[i%4],
			State: "done", CreatedAt: time.Unix(int64(i), 0)})
	}
	for _, q := range []RunQuery{
		{Limit: 50},
		{Workflow: "wf_07", Limit: 50},
		{Status: RunCompleted, Offset: 40 * 50, Limit: 50},
		{Since: time.Unix(9_000, 0), Limit: 50},
	} {
		b.Run(fmt.Sprintf("wf=%q,status=%q,offset=%d", q.Workflow, q.Status, q.Offset), func(b *testing.B) {
			for b.Loop() {
				_ = s.page(q)
			}
		})
	}
}

// BenchmarkRunIndexMemory reports the heap bytes per run held: ids of 26
// bytes, 50 workflows, one failed run in four with a 100-byte error.
// go test -run '^$' -bench RunIndexMemory -benchtime 1x ./pkg/client
func BenchmarkRunIndexMemory(b *testing.B) {
	const n = 100_000
	sts := RunStatuses()
	runs := make([]RunSummary, n)
	for i := range runs {
		runs[i] = RunSummary{ID: fmt.Sprintf("01JZ%022d", i), Workflow: fmt.Sprintf("wf_%02d", i%50), Version: "v1",
			Status: sts[i%4], State: "done", CreatedAt: time.Unix(int64(i), 0), UpdatedAt: time.Unix(int64(i), 0)}
		if runs[i].Status == RunFailed {
			runs[i].Error = strings.Repeat("x", 100)
		}
	}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := newRunSet(0)
		for _, r := range runs {
			r.ID = strings.Clone(r.ID) // as if decoded from a record
			s.put(r)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/run")
		runtime.KeepAlive(s)
	}
}
