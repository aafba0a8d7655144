package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/dashboard"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// Pass is a test task that moves straight to "done".
type Pass struct{}

// Kind implements fsm.Task.
func (Pass) Kind() string { return "dash_pass" }

// Run implements fsm.Task.
func (Pass) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) { return fsm.Next("done"), nil }

// TestScale measures the pages at CANO_SCALE_RUNS runs spread over 50
// workflows (skipped unless set, e.g. CANO_SCALE_RUNS=10000). It reports
// figures; it asserts only that every page answers.
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CANO_SCALE_RUNS"))
	if n <= 0 {
		t.Skip("set CANO_SCALE_RUNS=10000 to measure the pages at that many runs")
	}
	s := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	reg := &fsm.Registry{}
	fsm.Register[Pass](reg)
	var defs []worker.Definer
	for i := range 50 {
		defs = append(defs, fsm.New[string](fmt.Sprintf("wf_%02d", i), "go").Register("go", Pass{}).Exit("done"))
	}
	w, err := worker.New(s.nc, worker.Config{ID: "scale-worker", Registry: reg, Workflows: defs, Concurrency: 512})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	defer func() { _ = w.Stop(context.Background()) }()
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				_, err := s.cl.Trigger(ctx, fmt.Sprintf("wf_%02d", i%50), nil)
				require.NoError(t, err)
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	t.Logf("triggered %d runs in %s", n, time.Since(start))
	require.Eventually(t, func() bool {
		runs, err := s.cl.List(ctx, &client.ListOpts{Status: client.RunRunning})
		return err == nil && len(runs) == 0
	}, 10*time.Minute, time.Second)
	// The same pages from a dashboard without the runs index (no
	// StartEvents): every request reads every run record, as before the
	// index.
	noIndex, err := dashboard.New(s.nc, dashboard.Config{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	plain := httptest.NewServer(noIndex.Handler())
	defer plain.Close()
	measure := func(base, p string) time.Duration {
		var best time.Duration
		for range 3 {
			t0 := time.Now()
			resp, err := http.Get(base + p)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if d := time.Since(t0); best == 0 || d < best {
				best = d
			}
		}
		return best
	}
	for _, p := range []string{"/runs", "/runs?workflow=wf_07", "/runs?status=completed&page=100", "/runs?since=1h&page=150", "/runs/" + "x", "/workflows", "/workflows/wf_07", "/runs"} {
		line := fmt.Sprintf("GET %-40s best of 3: %10s", p, measure(s.base, p))
		if strings.HasPrefix(p, "/runs?") || p == "/runs" || strings.HasPrefix(p, "/workflows/") {
			line += fmt.Sprintf("   without the runs index: %10s", measure(plain.URL, p))
		}
		t.Log(line)
	}
	t0 := time.Now()
	ix, err := s.cl.WatchRuns(ctx, client.RunIndexConfig{})
	require.NoError(t, err)
	<-ix.Ready()
	t.Logf("a fresh runs index loaded %d runs in %s", ix.Page(client.RunQuery{}).Held, time.Since(t0))
	ix.Stop()
	t0 = time.Now()
	runs, err := s.cl.List(ctx, nil)
	require.NoError(t, err)
	t.Logf("client.List(nil): %d runs in %s", len(runs), time.Since(t0))
}
