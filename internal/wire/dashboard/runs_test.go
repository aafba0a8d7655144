package dashboard

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
)

func TestParseRunsFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, query string
		want        runsFilter
		err         string
	}{
		{"empty", "", runsFilter{Page: 1, Size: 50}, ""},
		{"all", "workflow=a&status=failed&since=1h&page=3&size=10",
			runsFilter{Workflow: "a", Status: client.RunFailed, Since: time.Hour, SinceRaw: "1h", Page: 3, Size: 10}, ""},
		{"bad status", "status=nope", runsFilter{}, `status "nope"`},
		{"bad since", "since=yesterday", runsFilter{}, `since "yesterday"`},
		{"negative since", "since=-1h", runsFilter{}, `since "-1h"`},
		{"bad page", "page=0", runsFilter{}, `page "0"`},
		{"page too big", "size=100000", runsFilter{}, `size "100000"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tc.query)
			require.NoError(t, err)
			got, err := parseRunsFilter(q, 50)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestPageRuns(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var runs []*client.Run // newest first, one a minute
	for i := range 10 {
		st := client.RunCompleted
		if i%3 == 0 {
			st = client.RunFailed
		}
		runs = append(runs, &client.Run{ID: string(rune('a' + i)), Status: st, CreatedAt: now.Add(-time.Duration(i) * time.Minute)})
	}
	ids := func(rs []client.RunSummary) (s string) {
		for _, r := range rs {
			s += r.ID
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		f      runsFilter
		ids    string
		total  int
		failed int
		match  int
		pages  int
	}{
		{"first page", runsFilter{Page: 1, Size: 4}, "abcd", 10, 4, 10, 3},
		{"last page", runsFilter{Page: 3, Size: 4}, "ij", 10, 4, 10, 3},
		{"past the end", runsFilter{Page: 9, Size: 4}, "", 10, 4, 10, 3},
		{"status", runsFilter{Status: client.RunFailed, Page: 1, Size: 4}, "adgj", 10, 4, 4, 1},
		{"window", runsFilter{Since: 150 * time.Second, Page: 1, Size: 4}, "abc", 3, 1, 3, 1},
		{"window and status", runsFilter{Since: 5 * time.Minute, Status: client.RunCompleted, Page: 2, Size: 2}, "ef", 6, 2, 4, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := pageRuns(runs, tc.f, now)
			require.Equal(t, tc.ids, ids(res.runs))
			require.Equal(t, tc.total, res.total)
			require.Equal(t, tc.failed, res.counts[client.RunFailed])
			require.Equal(t, tc.match, res.matching)
			require.Equal(t, tc.pages, res.pages)
		})
	}
}
