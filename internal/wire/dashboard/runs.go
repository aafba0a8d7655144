package dashboard

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/cano-nats/cano/pkg/client"
)

// windows are the time filters the runs page offers ("" is any time).
var windows = []string{"", "15m", "1h", "24h", "168h"}

// runsFilter is the runs page's query: ?workflow=&status=&since=&page=.
type runsFilter struct {
	Workflow string
	Status   client.RunStatus
	Since    time.Duration // runs created in the last Since; 0 is any time
	SinceRaw string
	Page     int // from 1
	Size     int
}

// parseRunsFilter reads the runs page's query, with an error that names
// the bad parameter.
func parseRunsFilter(q url.Values, size int) (runsFilter, error) {
	f := runsFilter{Workflow: q.Get("workflow"), Status: client.RunStatus(q.Get("status")), Page: 1, Size: size}
	if f.Status != "" && !slices.Contains(client.RunStatuses(), f.Status) {
		return f, fmt.Errorf("dashboard: status %q: want one of %v", f.Status, client.RunStatuses())
	}
	if s := q.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return f, fmt.Errorf("dashboard: since %q: want a positive duration such as 1h", s)
		}
		f.Since, f.SinceRaw = d, s
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return f, fmt.Errorf("dashboard: page %q: want a number from 1", p)
		}
		f.Page = n
	}
	if s := q.Get("size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > PageSizeMax {
			return f, fmt.Errorf("dashboard: size %q: want 1..%d", s, PageSizeMax)
		}
		f.Size = n
	}
	return f, nil
}

// query is the filter without its page, for links.
func (f runsFilter) query() url.Values {
	q := url.Values{}
	if f.Workflow != "" {
		q.Set("workflow", f.Workflow)
	}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if f.SinceRaw != "" {
		q.Set("since", f.SinceRaw)
	}
	return q
}

// runsPageResult is one page of runs and the counts around it.
type runsPageResult struct {
	runs          []client.RunSummary
	counts        map[client.RunStatus]int // in the time window, by status
	total         int                      // in the time window
	matching      int                      // matching the status too
	pages         int
	dropped       uint64    // runs beyond the index's cap
	droppedBefore time.Time // created at or before this
}

// indexPage asks the runs index for the page f names.
func indexPage(ix *client.RunIndex, f runsFilter, now time.Time) runsPageResult {
	q := client.RunQuery{Workflow: f.Workflow, Status: f.Status, Offset: (f.Page - 1) * f.Size, Limit: f.Size}
	if f.Since > 0 {
		q.Since = now.Add(-f.Since)
	}
	p := ix.Page(q)
	return runsPageResult{runs: p.Runs, counts: p.Counts, total: p.Total, matching: p.Matching,
		pages: max(1, (p.Matching+f.Size-1)/f.Size), dropped: p.Dropped, droppedBefore: p.DroppedBefore}
}

// summaryOf is the summary of a run read whole.
func summaryOf(r *client.Run) client.RunSummary {
	s := client.RunSummary{ID: r.ID, Workflow: r.Workflow, Version: r.Version, Status: r.Status, State: r.State,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, StartAt: r.StartAt}
	if r.Status.Terminal() {
		s.EndedAt = r.UpdatedAt
	}
	if r.Err != nil {
		s.Error = r.Err.Error()
	}
	return s
}

// pageRuns cuts one page out of runs (newest first, as client.List
// returns them, already filtered by workflow), when there is no runs index and counts them by status
// within the time window. It is pure: now is the clock.
func pageRuns(runs []*client.Run, f runsFilter, now time.Time) runsPageResult {
	res := runsPageResult{counts: map[client.RunStatus]int{}}
	var match []*client.Run
	for _, r := range runs {
		if f.Since > 0 && r.CreatedAt.Before(now.Add(-f.Since)) {
			continue
		}
		res.total++
		res.counts[r.Status]++
		if f.Status == "" || r.Status == f.Status {
			match = append(match, r)
		}
	}
	res.matching = len(match)
	res.pages = max(1, (len(match)+f.Size-1)/f.Size)
	from := (f.Page - 1) * f.Size
	if from < len(match) {
		for _, r := range match[from:min(from+f.Size, len(match))] {
			res.runs = append(res.runs, summaryOf(r))
		}
	}
	return res
}
