package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wire/dashboard"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/scheduler"
)

// TestHandlers runs every page and action against a dev-mode setup.
func TestHandlers(t *testing.T) {
	s := startDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Wait for the demo worker and the echo worker to register.
	require.Eventually(t, func() bool {
		_, e1 := s.cl.Workflow(ctx, echoFailName, "")
		_, e2 := s.cl.Workflow(ctx, demo.SleepyName, "")
		return e1 == nil && e2 == nil
	}, 60*time.Second, 50*time.Millisecond)

	t.Run("escaping", func(t *testing.T) {
		const evil = `<script>alert("x")</script>`
		run, err := s.cl.Run(ctx, echoFailName, &client.TriggerOpts{Input: evil})
		require.Error(t, err)
		require.Equal(t, client.RunFailed, run.Status)
		code, body := s.get(t, "/runs/"+run.ID)
		require.Equal(t, http.StatusOK, code)
		require.NotContains(t, body, "<script>alert")
		require.Contains(t, body, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, "the input and the error are shown escaped")
		require.Equal(t, 3, strings.Count(body, "&lt;script&gt;alert"), "the input, the run's error and its step's error, escaped")
	})

	t.Run("runs page", func(t *testing.T) {
		run, err := s.cl.Run(ctx, demo.SleepyName, nil)
		require.NoError(t, err)
		// The page reads the runs index, which follows the bucket's watch
		// a moment behind the record's write.
		var body string
		require.Eventually(t, func() bool {
			var code int
			code, body = s.get(t, "/runs?workflow="+demo.SleepyName)
			return code == http.StatusOK && strings.Contains(body, `id="run-`+run.ID+`" class="status-completed"`)
		}, 10*time.Second, 20*time.Millisecond, "the run shows completed on the runs page: %s", body)
		code, body := s.get(t, "/runs?status=bogus")
		require.Equal(t, http.StatusBadRequest, code)
		require.Contains(t, body, "want one of")
	})

	t.Run("runs beyond the index cap", func(t *testing.T) {
		for range 2 {
			_, err := s.cl.Run(ctx, demo.SleepyName, nil)
			require.NoError(t, err)
		}
		d, err := dashboard.New(s.nc, dashboard.Config{Addr: "127.0.0.1:0", IndexMaxRuns: 1})
		require.NoError(t, err)
		d.StartEvents(ctx)
		defer func() { _ = d.Stop(context.Background()) }()
		hs := httptest.NewServer(d.Handler())
		defer hs.Close()
		resp, err := http.Get(hs.URL + "/runs")
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		body := string(b)
		require.Contains(t, body, "are beyond the runs index")
		require.Equal(t, 1, strings.Count(body, `<tr id="run-`), "one run held")
	})

	t.Run("run page", func(t *testing.T) {
		run, err := s.cl.Run(ctx, demo.SleepyName, nil)
		require.NoError(t, err)
		code, body := s.get(t, "/runs/"+run.ID)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `class="edge taken" data-from="sleep" data-to="after"`)
		require.Contains(t, body, `final-completed" data-state="done"`)
		require.Contains(t, body, `id="rerun"`, "an ended run can be run again")
		require.NotContains(t, body, `id="cancel"`)
		code, _ = s.get(t, "/runs/no-such-run")
		require.Equal(t, http.StatusNotFound, code)
		fetched, err := s.cl.Run(ctx, demo.WorkflowName, nil)
		require.NoError(t, err)
		code, page := s.get(t, "/runs/"+fetched.ID)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, page, `<dt>Output</dt><dd><pre class="output" id="run-output">&#34;data_from_1,data_from_2,data_from_3&#34;</pre>`, "an ended run shows its output")

		// Run again: a new run of the same workflow; its page follows. The
		// form carries the page's key: sent twice (a double click), it
		// starts one run; a page seen again starts another.
		keyOf := func(body string) url.Values {
			m := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(body)
			require.NotNil(t, m, "the Run again form has a key")
			return url.Values{"key": {m[1]}}
		}
		rerun := func(form url.Values) string {
			resp, err := http.PostForm(s.base+"/runs/"+run.ID+"/rerun", form)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.True(t, strings.HasPrefix(resp.Request.URL.Path, "/runs/"), resp.Request.URL.Path)
			return strings.TrimPrefix(resp.Request.URL.Path, "/runs/")
		}
		form := keyOf(body)
		again := rerun(form)
		require.NotEqual(t, run.ID, again)
		require.Equal(t, again, rerun(form), "the same page's form sent twice starts one run")
		_, body = s.get(t, "/runs/"+run.ID)
		third := rerun(keyOf(body))
		require.NotEqual(t, again, third, "the page seen again starts another")
		for _, id := range []string{again, third} {
			out, err := s.cl.Await(ctx, id)
			require.NoError(t, err)
			require.Equal(t, client.RunCompleted, out.Status)
		}
		resp, err := http.PostForm(s.base+"/runs/no-such-run/rerun", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
	})

	t.Run("a run scheduled to start later", func(t *testing.T) {
		id, err := s.cl.Trigger(ctx, demo.SleepyName, &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		code, body := s.get(t, "/runs/"+id)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `class="badge status-scheduled">scheduled<`)
		require.Contains(t, body, `<dt>Starts</dt><dd id="run-start-at">`)
		require.Contains(t, body, `id="cancel"`, "a scheduled run can be cancelled")
		req, err := http.NewRequest(http.MethodPost, s.base+"/runs/"+id+"/rerun", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, resp.StatusCode, "a run not ended is not run again")
		require.Contains(t, string(b), "rerun a run once it has ended")
		require.Eventually(t, func() bool {
			code, body = s.get(t, "/runs?status=scheduled")
			return code == http.StatusOK && strings.Contains(body, `id="run-`+id+`" class="status-scheduled"`)
		}, 10*time.Second, 20*time.Millisecond, "the run shows scheduled on the runs page: %s", body)
		require.Contains(t, body, `data-count="scheduled">1<`)
		require.Regexp(t, `id="run-`+id+`" class="status-scheduled">.*?<td class="starts">[^<]+</td>`, body, "its row says when it starts")
		require.NoError(t, s.cl.Cancel(ctx, id, "test"))
		_, err = s.cl.Await(ctx, id)
		require.ErrorIs(t, err, fsm.ErrCancelled)
		// Cancelled before its start: the page does not say it started.
		code, body = s.get(t, "/runs/"+id)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<dt>Was to start</dt><dd id="run-start-at">`)
		require.Contains(t, body, `(it ended before its start)</dd>`)
	})

	t.Run("start now", func(t *testing.T) {
		hour := time.Now().Add(time.Hour)
		id, err := s.cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{StartAt: hour})
		require.NoError(t, err)
		code, body := s.get(t, "/runs/"+id)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `action="/runs/`+id+`/start"`, "a scheduled run can be started now")
		post := func() (int, string) {
			req, err := http.NewRequest(http.MethodPost, s.base+"/runs/"+id+"/start", nil)
			require.NoError(t, err)
			req.Header.Set("Accept", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return resp.StatusCode, string(b)
		}
		code, answer := post()
		require.Equal(t, http.StatusOK, code, answer)
		out, err := s.cl.Await(ctx, id)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, out.Status)
		require.True(t, out.StartAt.Before(hour), "it started now")
		code, body = s.get(t, "/runs/"+id)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<dt>Started</dt><dd id="run-start-at">`)
		require.NotContains(t, body, `id="start-now"`, "an ended run cannot be started")
		code, answer = post()
		require.Equal(t, http.StatusConflict, code)
		require.Contains(t, answer, "only a run waiting for its start can be started now")
	})

	t.Run("other pages", func(t *testing.T) {
		for path, want := range map[string]string{
			"/workflows":                    demo.SleepyName,
			"/workflows/" + demo.SleepyName: `data-state="sleep"`,
			"/flows":                        "No flows",
			"/breakers":                     "Breakers",
			"/workers":                      "echo-worker",
			"/deadletters":                  "Dead letters",
		} {
			code, body := s.get(t, path)
			require.Equal(t, http.StatusOK, code, path)
			require.Contains(t, body, want, path)
		}
	})

	t.Run("a workflow's tasks with their parameters and attempts", func(t *testing.T) {
		code, body := s.get(t, "/workflows/"+demo.SleepyName)
		require.Equal(t, http.StatusOK, code)
		require.Regexp(t, `<th>Task / branches</th><th>Attempts</th>`, body)
		require.Regexp(t, `<td class="tasks">noop {&#34;next&#34;:&#34;done&#34;}</td><td class="attempts">\d+ retries from \S+ ×\d`, body)
	})

	t.Run("trigger", func(t *testing.T) {
		resp, err := http.PostForm(s.base+"/trigger", url.Values{"workflow": {demo.SleepyName}, "input": {`{"n": 1}`}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode) // redirected to the run page
		require.Contains(t, resp.Request.URL.Path, "/runs/")
		resp, err = http.PostForm(s.base+"/trigger", url.Values{"workflow": {demo.SleepyName}, "input": {`{nope`}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		resp, err = http.PostForm(s.base+"/trigger", url.Values{"workflow": {"no_such_workflow"}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})

	t.Run("trigger to start later", func(t *testing.T) {
		code, body := s.get(t, "/runs")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, body, `<input name="start"`, "the trigger form asks when to start")
		post := func(start string) (int, map[string]string) {
			return s.postJSON(t, "/trigger", url.Values{"workflow": {demo.SleepyName}, "start": {start}})
		}
		at := time.Now().Add(2 * time.Hour).Truncate(time.Second)
		for _, tc := range []struct{ start, wantAt string }{
			{"1h", ""}, // checked against the clock below
			{at.Format(time.RFC3339), at.UTC().Format(time.RFC3339)},
		} {
			before := time.Now()
			code, v := post(tc.start)
			require.Equal(t, http.StatusOK, code, "start %q: %v", tc.start, v)
			run, err := s.cl.Get(ctx, v["run_id"])
			require.NoError(t, err)
			require.Equal(t, client.RunScheduled, run.Status, "start %q", tc.start)
			require.Equal(t, run.StartAt.UTC().Format(time.RFC3339), v["start_at"], "the answer says when it starts")
			if tc.wantAt != "" {
				require.Equal(t, tc.wantAt, v["start_at"])
			} else {
				require.WithinRange(t, run.StartAt, before.Add(time.Hour), time.Now().Add(time.Hour))
			}
			require.NoError(t, s.cl.Cancel(ctx, run.ID, "test"))
		}
		for _, tc := range []struct{ start, want string }{
			{"tomorrow", `start "tomorrow" is neither a delay (90s, 2h30m, 48h) nor an RFC 3339 time (2026-12-24T18:00:00Z); leave it empty to start now`},
			{"-5m", "start -5m is negative: give how long from now, such as 90s"},
			{"1900-01-01T00:00:00Z", "a start time must be between 1970 and 2262"},
		} {
			code, v := post(tc.start)
			require.Equal(t, http.StatusBadRequest, code, "start %q", tc.start)
			require.Contains(t, v["error"], tc.want)
		}
	})

	t.Run("cancel selected runs", func(t *testing.T) {
		var ids []string
		for range 2 {
			id, err := s.cl.Trigger(ctx, demo.SleepyName, &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		require.Eventually(t, func() bool {
			_, body := s.get(t, "/runs?status=scheduled")
			return strings.Contains(body, `name="id" value="`+ids[1]+`" form="bulk"`)
		}, 10*time.Second, 20*time.Millisecond, "a run not ended can be ticked")
		code, v := s.postJSON(t, "/runs/cancel", url.Values{"id": ids})
		require.Equal(t, http.StatusOK, code, v)
		require.Equal(t, "2", v["cancel_requested"])
		for _, id := range ids {
			out, err := s.cl.Await(ctx, id)
			require.ErrorIs(t, err, fsm.ErrCancelled)
			require.Equal(t, client.RunCancelled, out.Status)
		}
		code, v = s.postJSON(t, "/runs/cancel", url.Values{})
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "dashboard: cancel: no run selected: tick the runs to cancel first", v["error"])
	})

	t.Run("start selected runs", func(t *testing.T) {
		hour := time.Now().Add(time.Hour)
		var ids []string
		for range 2 {
			id, err := s.cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{StartAt: hour})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		_, body := s.get(t, "/runs")
		require.Contains(t, body, `id="start-selected" formaction="/runs/start"`)
		code, v := s.postJSON(t, "/runs/start", url.Values{"id": ids})
		require.Equal(t, http.StatusOK, code, v)
		require.Equal(t, "2", v["start_requested"])
		for _, id := range ids {
			out, err := s.cl.Await(ctx, id)
			require.NoError(t, err)
			require.True(t, out.StartAt.Before(hour), "started now")
		}
		// Started already: refused for its status (409), named in the answer.
		code, v = s.postJSON(t, "/runs/start", url.Values{"id": ids[:1]})
		require.Equal(t, http.StatusConflict, code)
		require.Contains(t, v["error"], "dashboard: start: 1 of 1 starts failed (the others were requested): run "+ids[0])
		require.Contains(t, v["error"], "only a run waiting for its start can be started now")
		code, v = s.postJSON(t, "/runs/start", url.Values{})
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "dashboard: start: no run selected: tick the runs to start first", v["error"])
	})

	t.Run("dead letters: replay and delete those ticked", func(t *testing.T) {
		for range 2 {
			_, err := s.cl.Trigger(ctx, "no_such_workflow_dl", nil)
			require.ErrorIs(t, err, fsm.ErrConfiguration)
		}
		var seqs []string
		require.Eventually(t, func() bool {
			dls, err := s.cl.DeadLetters(ctx, &client.DeadLetterFilter{Source: "trigger"})
			seqs = seqs[:0]
			for _, d := range dls {
				if strings.Contains(d.Reason, "no_such_workflow_dl") {
					seqs = append(seqs, strconv.FormatUint(d.Seq, 10))
				}
			}
			return err == nil && len(seqs) == 2
		}, 20*time.Second, 20*time.Millisecond, "two dead letters")
		_, body := s.get(t, "/deadletters")
		require.Contains(t, body, `name="seq" value="`+seqs[0]+`" form="dl-bulk"`)
		require.True(t, utf8.ValidString(body), "a msgpack payload is not written raw into the page")
		require.Contains(t, body, `&#34;workflow&#34;:&#34;no_such_workflow_dl&#34;`, "the payload is shown as JSON")
		// Replayed, a refused trigger is refused again: a new dead letter.
		code, v := s.postJSON(t, "/deadletters/replay", url.Values{"seq": seqs[:1]})
		require.Equal(t, http.StatusOK, code, v)
		require.Equal(t, "replayed 1 dead letter", v["message"])
		code, v = s.postJSON(t, "/deadletters/delete", url.Values{"seq": seqs[1:]})
		require.Equal(t, http.StatusOK, code, v)
		require.Equal(t, "deleted 1 dead letter", v["message"])
		dls, err := s.cl.DeadLetters(ctx, &client.DeadLetterFilter{Source: "trigger"})
		require.NoError(t, err)
		for _, d := range dls {
			require.NotContains(t, seqs, strconv.FormatUint(d.Seq, 10), "replayed or deleted: gone")
		}
		code, v = s.postJSON(t, "/deadletters/delete", url.Values{"seq": seqs})
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, v["error"], "dashboard: delete: 2 of 2 failed")
		code, v = s.postJSON(t, "/deadletters/delete", url.Values{"seq": {seqs[0], "abc"}})
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, `dashboard: delete: dead letter "abc": not a sequence number`, v["error"])
		code, v = s.postJSON(t, "/deadletters/replay", url.Values{})
		require.Equal(t, http.StatusBadRequest, code)
		require.Equal(t, "dashboard: replay: no dead letter selected: tick those to replay first", v["error"])
	})

	t.Run("cross-site post refused", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, s.base+"/trigger", strings.NewReader("workflow="+demo.SleepyName))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	})

	t.Run("a cron flow's next slot", func(t *testing.T) {
		js, err := jetstream.New(s.nc)
		require.NoError(t, err)
		fc, err := scheduler.NewClient(js, scheduler.ClientConfig{})
		require.NoError(t, err)
		require.NoError(t, fc.Add(ctx, scheduler.Flow{ID: "nightly", Workflow: demo.SleepyName,
			Schedule: scheduler.CronIn("0 0 2 * * *", "UTC")}))
		t.Cleanup(func() { _ = fc.Remove(context.Background(), "nightly") })
		_, body := s.get(t, "/flows")
		require.Regexp(t, `cron 0 0 2 \* \* \* UTC<br><small class="next-slot">next slot [0-9-]* ?02:00:00(\.000)?</small>`, body)
		require.NoError(t, fc.Pause(ctx, "nightly"))
		_, body = s.get(t, "/flows")
		require.Contains(t, body, `cron 0 0 2 * * * UTC<br><small class="next-slot">no slot while paused</small>`)
	})

	t.Run("flow pause and resume", func(t *testing.T) {
		js, err := jetstream.New(s.nc)
		require.NoError(t, err)
		fc, err := scheduler.NewClient(js, scheduler.ClientConfig{})
		require.NoError(t, err)
		require.NoError(t, fc.Add(ctx, scheduler.Flow{ID: "hourly", Workflow: demo.SleepyName, Schedule: scheduler.Every(time.Hour)}))
		t.Cleanup(func() { _ = fc.Remove(context.Background(), "hourly") })
		post := func(path string, crossSite bool) int {
			req, err := http.NewRequest(http.MethodPost, s.base+path, nil)
			require.NoError(t, err)
			req.Header.Set("Accept", "application/json")
			if crossSite {
				req.Header.Set("Sec-Fetch-Site", "cross-site")
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			return resp.StatusCode
		}
		paused := func() bool {
			info, err := fc.Status(ctx, "hourly")
			require.NoError(t, err)
			return info.Paused
		}

		require.Equal(t, http.StatusForbidden, post("/flows/hourly/pause", true), "a cross-site pause is refused")
		require.False(t, paused(), "a refused pause changes nothing")

		require.Equal(t, http.StatusOK, post("/flows/hourly/pause", false))
		require.True(t, paused())
		_, body := s.get(t, "/flows")
		require.Regexp(t, `<tr id="flow-hourly" class="flow-[a-z]+ flow-paused">`, body)
		require.Regexp(t, `<td class="status">paused(, running)?`, body)
		require.Contains(t, body, `action="/flows/hourly/resume"`)
		require.NotContains(t, body, `action="/flows/hourly/pause"`)

		require.Equal(t, http.StatusForbidden, post("/flows/hourly/resume", true), "a cross-site resume is refused")
		require.True(t, paused())
		require.Equal(t, http.StatusOK, post("/flows/hourly/resume", false))
		require.False(t, paused())
		_, body = s.get(t, "/flows")
		require.Contains(t, body, `action="/flows/hourly/pause"`)
		require.Equal(t, http.StatusNotFound, post("/flows/nope/pause", false))
	})

	t.Run("events", func(t *testing.T) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/events", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		buf := make([]byte, 64)
		n, err := resp.Body.Read(buf) // the "connected" preamble: subscribed
		require.NoError(t, err)
		require.Contains(t, string(buf[:n]), "retry:")
		id, err := s.cl.Trigger(ctx, demo.SleepyName, nil)
		require.NoError(t, err)
		var got strings.Builder
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(got.String(), `"type":"completed","run_id":"`+id+`"`) {
			require.True(t, time.Now().Before(deadline), "no completed event for %s in: %s", id, got.String())
			n, err := resp.Body.Read(buf)
			require.NoError(t, err)
			got.Write(buf[:n])
		}
	})
}
