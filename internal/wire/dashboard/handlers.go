package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/cano-nats/cano/internal/wire/pretty"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/scheduler"
)

func parseTemplates() (*template.Template, error) {
	t, err := template.New("").Funcs(template.FuncMap{
		"when":   fmtTime,
		"dur":    fmtDur,
		"join":   strings.Join,
		"errstr": errString,
		"query":  func(v url.Values) string { return v.Encode() },
		// payload shows a dead letter's bytes as JSON, text or hex.
		"payload": func(b []byte) string { return pretty.Text(b, 200) },
		// tasks and attempts say what a workflow state runs and how.
		"tasks":    pretty.StateTasks,
		"attempts": pretty.StateAttempts,
	}).ParseFS(templateFS, "templates/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	return t, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return d.Round(time.Millisecond).String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/runs", http.StatusSeeOther) })
	mux.HandleFunc("GET /runs", s.runsPage)
	mux.HandleFunc("GET /runs/{id}", s.runPage)
	mux.HandleFunc("POST /runs/cancel", s.cancelRuns)
	mux.HandleFunc("POST /runs/start", s.startRuns)
	mux.HandleFunc("POST /runs/{id}/cancel", s.cancelRun)
	mux.HandleFunc("POST /runs/{id}/rerun", s.rerunRun)
	mux.HandleFunc("POST /runs/{id}/start", s.startRunNow)
	mux.HandleFunc("POST /trigger", s.trigger)
	mux.HandleFunc("GET /workflows", s.workflowsPage)
	mux.HandleFunc("GET /workflows/{name}", s.workflowPage)
	mux.HandleFunc("GET /flows", s.flowsPage)
	mux.HandleFunc("POST /flows/{id}/trigger", s.flowAction)
	mux.HandleFunc("POST /flows/{id}/reset", s.flowAction)
	mux.HandleFunc("POST /flows/{id}/pause", s.flowAction)
	mux.HandleFunc("POST /flows/{id}/resume", s.flowAction)
	mux.HandleFunc("GET /breakers", s.breakersPage)
	mux.HandleFunc("POST /breakers/{name}/reset", s.resetBreaker)
	mux.HandleFunc("GET /workers", s.workersPage)
	mux.HandleFunc("GET /deadletters", s.deadLettersPage)
	mux.HandleFunc("POST /deadletters/replay", s.deadLettersAction)
	mux.HandleFunc("POST /deadletters/delete", s.deadLettersAction)
	mux.HandleFunc("POST /deadletters/{seq}/replay", s.deadLetterAction)
	mux.HandleFunc("POST /deadletters/{seq}/delete", s.deadLetterAction)
	return mux
}

// page is what every page template gets.
type page struct {
	Title string
	Nav   string
	// Live names the events that refresh the page's <main> ("run:<id>",
	// "breaker", "rejected", "terminal"); "" for none. The runs page
	// updates its rows itself.
	Live string
	Msg  string
	Data any
}

func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		s.log.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "dashboard: render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an error page, or a JSON error for a script's request.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	s.render(w, status, "error", page{Title: "Error", Msg: err.Error()})
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// done answers a successful action: JSON for a script, else a redirect.
func done(w http.ResponseWriter, r *http.Request, to string, v map[string]string) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, v)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, client.ErrNotFound), errors.Is(err, client.ErrWorkflowNotFound),
		errors.Is(err, client.ErrBreakerNotFound), errors.Is(err, client.ErrDeadLetterNotFound):
		return http.StatusNotFound
	case errors.Is(err, client.ErrNotEnded), errors.Is(err, client.ErrNotScheduled):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// runsView is the runs page's data.
type runsView struct {
	Runs      []client.RunSummary
	Workflows []string
	Statuses  []client.RunStatus
	Windows   []string
	Filter    runsFilter
	Counts    map[client.RunStatus]int
	Total     int // runs in the window, every status
	Matching  int // runs matching every filter
	Page      int
	Pages     int
	Prev      string
	Next      string
	Query     url.Values
	// Dropped counts runs beyond the index's cap, created at or before
	// DroppedBefore; 0 when the index holds every run.
	Dropped       uint64
	DroppedBefore time.Time
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	f, err := parseRunsFilter(r.URL.Query(), s.cfg.PageSize)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	wfs, err := s.cl.Workflows(r.Context())
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	v := runsView{Workflows: make([]string, 0, len(wfs)), Statuses: client.RunStatuses(), Windows: windows, Filter: f}
	for _, wf := range wfs {
		v.Workflows = append(v.Workflows, wf.Name)
	}
	var res runsPageResult
	if ix := s.runIndex(r.Context()); ix != nil {
		res = indexPage(ix, f, time.Now())
	} else {
		// No index (the events were not started, or it is still
		// loading): read every record.
		runs, err := s.cl.List(r.Context(), &client.ListOpts{Workflow: f.Workflow})
		if err != nil {
			s.fail(w, r, statusOf(err), err)
			return
		}
		res = pageRuns(runs, f, time.Now())
	}
	v.Runs, v.Counts, v.Total, v.Matching, v.Pages = res.runs, res.counts, res.total, res.matching, res.pages
	v.Dropped, v.DroppedBefore = res.dropped, res.droppedBefore
	v.Page = f.Page
	q := f.query()
	v.Query = q
	if f.Page > 1 {
		q.Set("page", strconv.Itoa(f.Page-1))
		v.Prev = "/runs?" + q.Encode()
	}
	if f.Page < res.pages {
		q.Set("page", strconv.Itoa(f.Page+1))
		v.Next = "/runs?" + q.Encode()
	}
	s.render(w, http.StatusOK, "runs", page{Title: "Runs", Nav: "runs", Data: v})
}

// runView is the run page's data.
type runView struct {
	Run     *client.Run
	Input   string
	Output  string
	Diagram *diagram
	DiagErr string
	// RerunKey is the idempotency key of this page's "Run again": a
	// double click, or a form sent again, starts one run; the page seen
	// again (a new key) starts another.
	RerunKey string
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	run, err := s.cl.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	v := runView{Run: run, Input: valueText(run.Input), Output: valueText(run.Output), RerunKey: nuid.Next()}
	wf, err := s.cl.Workflow(r.Context(), run.Workflow, run.Version)
	if err != nil {
		v.DiagErr = err.Error()
	} else {
		d := layoutDiagram(wf, nil, &runMarks{Path: run.Path, Status: run.Status})
		v.Diagram = &d
	}
	s.render(w, http.StatusOK, "run", page{Title: "Run " + run.ID, Nav: "runs", Live: "run:" + run.ID, Data: v})
}

// valueText shows a run's input or output as JSON: decode is
// client.Run's Input or Output. "" is no value.
func valueText(decode func(any) error) string {
	v := pretty.Decoded(decode)
	if v == nil {
		return ""
	}
	return pretty.JSON(v)
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.cl.Cancel(r.Context(), id, "requested from the dashboard"); err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	done(w, r, "/runs/"+url.PathEscape(id), map[string]string{"run_id": id})
}

// cancelRuns cancels the runs selected on the runs page (form values
// "id"), at most PageSizeMax. A cancel that fails does not stop the others;
// the answer names those that failed. An ended run's cancel changes
// nothing, as for one run.
func (s *Server) cancelRuns(w http.ResponseWriter, r *http.Request) {
	s.eachRun(w, r, "cancel", func(ctx context.Context, id string) error {
		return s.cl.Cancel(ctx, id, "requested from the dashboard")
	})
}

// startRuns starts the scheduled runs selected on the runs page now
// (client.StartNow), as cancelRuns cancels them. A run that is not
// scheduled is one of the failures the answer names.
func (s *Server) startRuns(w http.ResponseWriter, r *http.Request) {
	s.eachRun(w, r, "start", s.cl.StartNow)
}

// selection reads the values of field that a page's form ticked, for
// verb (noun names one of them, which how the text names them all). It
// answers 400 itself, and reports false, when the form cannot be read,
// or nothing or more than PageSizeMax is ticked.
func (s *Server) selection(w http.ResponseWriter, r *http.Request, verb, field, noun, which string) ([]string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("dashboard: %s: %w", verb, err))
		return nil, false
	}
	vals := r.PostForm[field]
	switch {
	case len(vals) == 0:
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("dashboard: %s: no %s selected: tick %s to %s first", verb, noun, which, verb))
		return nil, false
	case len(vals) > PageSizeMax:
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("dashboard: %s: %d %ss selected: at most %d at once", verb, len(vals), noun, PageSizeMax))
		return nil, false
	}
	return vals, true
}

// eachRun does act (verb names it) to each run selected on the runs page
// (form values "id"), at most PageSizeMax. One that fails does not stop
// the others; the answer names those that failed: 409 when each failed
// for the run's status, 502 otherwise.
func (s *Server) eachRun(w http.ResponseWriter, r *http.Request, verb string, act func(ctx context.Context, id string) error) {
	ids, ok := s.selection(w, r, verb, "id", "run", "the runs")
	if !ok {
		return
	}
	var failed []error
	code := http.StatusConflict
	for _, id := range ids {
		if err := act(r.Context(), id); err != nil {
			failed = append(failed, fmt.Errorf("run %s: %w", id, err))
			if statusOf(err) != http.StatusConflict {
				code = http.StatusBadGateway
			}
		}
	}
	if len(failed) > 0 {
		s.fail(w, r, code, fmt.Errorf("dashboard: %s: %d of %d %ss failed (the others were requested): %w",
			verb, len(failed), len(ids), verb, errors.Join(failed...)))
		return
	}
	done(w, r, "/runs", map[string]string{verb + "_requested": strconv.Itoa(len(ids))})
}

func (s *Server) rerunRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	nid, err := s.cl.Rerun(r.Context(), id, &client.RerunOpts{IdempotencyKey: r.FormValue("key")}) // "" (an old page): no key
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	done(w, r, "/runs/"+url.PathEscape(nid), map[string]string{"run_id": nid, "rerun_of": id})
}

// startRunNow starts a scheduled run now rather than at its time
// (client.StartNow).
func (s *Server) startRunNow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.cl.StartNow(r.Context(), id); err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	done(w, r, "/runs/"+url.PathEscape(id), map[string]string{"run_id": id})
}

// maxInput bounds a trigger's input field.
const maxInput = 1 << 20

func (s *Server) trigger(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxInput+4096)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("dashboard: trigger: %w", err))
		return
	}
	wf := strings.TrimSpace(r.PostForm.Get("workflow"))
	if wf == "" {
		s.fail(w, r, http.StatusBadRequest, errors.New("dashboard: trigger: choose a workflow"))
		return
	}
	opts := &client.TriggerOpts{}
	if in := strings.TrimSpace(r.PostForm.Get("input")); in != "" {
		v, err := parseInput(in)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, err)
			return
		}
		opts.Input = v
	}
	at, err := parseStart(r.PostForm.Get("start"), time.Now())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	opts.StartAt = at
	id, err := s.cl.Trigger(r.Context(), wf, opts)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	v := map[string]string{"run_id": id}
	if !at.IsZero() {
		v["start_at"] = at.UTC().Format(time.RFC3339)
	}
	done(w, r, "/runs/"+url.PathEscape(id), v)
}

// parseStart reads the trigger form's start field: empty (start now), a
// delay from now (90s, 2h30m) or an RFC 3339 time. It is pure: now is the
// clock.
func parseStart(in string, now time.Time) (time.Time, error) {
	in = strings.TrimSpace(in)
	if in == "" {
		return time.Time{}, nil
	}
	at, err := time.Parse(time.RFC3339Nano, in)
	if err != nil {
		d, derr := time.ParseDuration(in)
		if derr != nil {
			return time.Time{}, fmt.Errorf("dashboard: trigger: start %q is neither a delay (90s, 2h30m, 48h) nor an RFC 3339 time (2026-12-24T18:00:00Z); leave it empty to start now", in)
		}
		if d < 0 {
			return time.Time{}, fmt.Errorf("dashboard: trigger: start %s is negative: give how long from now, such as 90s", in)
		}
		at = now.Add(d)
	}
	if _, err := wirecodec.StartTime(at); err != nil {
		return time.Time{}, fmt.Errorf("dashboard: trigger: start %w", err)
	}
	return at, nil
}

// parseInput checks a trigger's JSON input, sent on as JSON: tasks decode
// it with encoding/json, as they do a trigger sent by `nats req`.
func parseInput(in string) (json.RawMessage, error) {
	if _, err := wirecodec.ParseJSON([]byte(in)); err != nil {
		return nil, fmt.Errorf("dashboard: trigger: the input %w", err)
	}
	return json.RawMessage(in), nil
}

func (s *Server) workflowsPage(w http.ResponseWriter, r *http.Request) {
	wfs, err := s.cl.Workflows(r.Context())
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.render(w, http.StatusOK, "workflows", page{Title: "Workflows", Nav: "workflows", Data: wfs})
}

// workflowView is the workflow page's data.
type workflowView struct {
	WF      *client.WorkflowInfo
	Diagram diagram
	Sampled int
}

// sampleRuns is how many recent runs a workflow page reads for the edges
// the definition does not know.
const sampleRuns = 20

func (s *Server) workflowPage(w http.ResponseWriter, r *http.Request) {
	wf, err := s.cl.Workflow(r.Context(), r.PathValue("name"), r.URL.Query().Get("version"))
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	runs, err := s.recentRuns(r.Context(), wf.Name, sampleRuns)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	var paths [][]string
	for _, run := range runs {
		if run.Version == wf.Version {
			paths = append(paths, run.Path)
		}
	}
	v := workflowView{WF: wf, Diagram: layoutDiagram(wf, paths, nil), Sampled: len(paths)}
	s.render(w, http.StatusOK, "workflow", page{Title: "Workflow " + wf.Name, Nav: "workflows", Data: v})
}

// recentRuns reads the newest n runs of workflow wf: their ids from the
// runs index, then each record (the index holds no paths); without a
// loaded index, by reading every record.
func (s *Server) recentRuns(ctx context.Context, wf string, n int) ([]*client.Run, error) {
	ix := s.runIndex(ctx)
	if ix == nil {
		return s.cl.List(ctx, &client.ListOpts{Workflow: wf, Limit: n})
	}
	var runs []*client.Run
	for _, sum := range ix.Page(client.RunQuery{Workflow: wf, Limit: n}).Runs {
		run, err := s.cl.Get(ctx, sum.ID)
		if errors.Is(err, client.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

func (s *Server) flowsPage(w http.ResponseWriter, r *http.Request) {
	flows, err := s.flows.List(r.Context())
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.render(w, http.StatusOK, "flows", page{Title: "Flows", Nav: "flows", Live: "terminal", Data: flows})
}

func (s *Server) flowAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var err error
	switch r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:] {
	case "reset":
		err = s.flows.Reset(r.Context(), id)
	case "pause":
		err = s.flows.Pause(r.Context(), id)
	case "resume":
		err = s.flows.Resume(r.Context(), id)
	default:
		err = s.flows.Trigger(r.Context(), id)
	}
	if err != nil {
		status := http.StatusBadGateway
		switch {
		case errors.Is(err, scheduler.ErrInvalidFlow):
			status = http.StatusBadRequest
		case errors.Is(err, scheduler.ErrFlowNotFound):
			status = http.StatusNotFound
		case errors.Is(err, scheduler.ErrFlowTripped), errors.Is(err, scheduler.ErrFlowRunning):
			status = http.StatusConflict
		}
		s.fail(w, r, status, err)
		return
	}
	done(w, r, "/flows", map[string]string{"flow": id})
}

func (s *Server) breakersPage(w http.ResponseWriter, r *http.Request) {
	bs, err := s.cl.Breakers(r.Context())
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.render(w, http.StatusOK, "breakers", page{Title: "Breakers", Nav: "breakers", Live: "breaker", Data: bs})
}

func (s *Server) resetBreaker(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.cl.ResetBreaker(r.Context(), name); err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	done(w, r, "/breakers", map[string]string{"breaker": name})
}

func (s *Server) workersPage(w http.ResponseWriter, r *http.Request) {
	ws, err := s.cl.Workers(r.Context())
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.render(w, http.StatusOK, "workers", page{Title: "Workers", Nav: "workers", Data: ws})
}

// deadLetterLimit is how many dead letters the page lists.
const deadLetterLimit = 200

func (s *Server) deadLettersPage(w http.ResponseWriter, r *http.Request) {
	dls, err := s.cl.DeadLetters(r.Context(), &client.DeadLetterFilter{Source: r.URL.Query().Get("source"), Limit: deadLetterLimit})
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.render(w, http.StatusOK, "deadletters", page{Title: "Dead letters", Nav: "deadletters", Live: "rejected", Data: dls})
}

func (s *Server) deadLetterAction(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("dashboard: dead letter %q: not a sequence number", r.PathValue("seq")))
		return
	}
	if strings.HasSuffix(r.URL.Path, "/replay") {
		err = s.cl.Replay(r.Context(), seq)
	} else {
		err = s.cl.DeleteDeadLetter(r.Context(), seq)
	}
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	done(w, r, "/deadletters", map[string]string{"seq": strconv.FormatUint(seq, 10)})
}

// deadLettersAction replays or deletes the dead letters ticked on their
// page (form values "seq"), at most PageSizeMax. One that fails does not
// stop the others; the answer names those that failed.
func (s *Server) deadLettersAction(w http.ResponseWriter, r *http.Request) {
	replay := strings.HasSuffix(r.URL.Path, "/replay")
	verb, past, do := "delete", "deleted", s.cl.DeleteDeadLetter
	if replay {
		verb, past, do = "replay", "replayed", s.cl.Replay
	}
	seqs, ok := s.selection(w, r, verb, "seq", "dead letter", "those")
	if !ok {
		return
	}
	nums := make([]uint64, len(seqs))
	for i, v := range seqs {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("dashboard: %s: dead letter %q: not a sequence number", verb, v))
			return
		}
		nums[i] = n
	}
	var failed []error
	for _, seq := range nums {
		if err := do(r.Context(), seq); err != nil {
			failed = append(failed, fmt.Errorf("dead letter %d: %w", seq, err))
		}
	}
	if len(failed) > 0 {
		s.fail(w, r, statusOf(failed[0]), fmt.Errorf("dashboard: %s: %d of %d failed (the others were %s): %w",
			verb, len(failed), len(seqs), past, errors.Join(failed...)))
		return
	}
	noun := " dead letters"
	if len(seqs) == 1 {
		noun = " dead letter"
	}
	done(w, r, "/deadletters", map[string]string{"message": past + " " + strconv.Itoa(len(seqs)) + noun})
}
