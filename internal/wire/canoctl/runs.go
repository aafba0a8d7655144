package canoctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/cano-nats/cano/internal/wire/pretty"
	"github.com/cano-nats/cano/pkg/client"
)

type runsListOpts struct {
	workflow, status string
	since            time.Duration
	limit            int
}

type runsWatchOpts struct {
	workflow string
	since    time.Duration
	all      bool
}

type cancelOpts struct {
	reason   string
	wait     bool
	workflow string
	status   string
	yes      bool
}

func runCommands() []command {
	return []command{
		{path: "runs list", short: "list runs, newest first", nargs: 0,
			flags: func(fs *flag.FlagSet) any {
				o := &runsListOpts{}
				fs.StringVar(&o.workflow, "workflow", "", "only runs of this `workflow`")
				fs.StringVar(&o.status, "status", "", "only runs in this `status`: "+statusNames())
				fs.DurationVar(&o.since, "since", 0, "only runs started within this `duration` (e.g. 1h)")
				fs.IntVar(&o.limit, "limit", 50, "at most this many runs (0: all)")
				return o
			}, run: runsList},
		{path: "runs show", args: "ID", short: "show a run: status, history, error and output", nargs: 1, run: runsShow},
		{path: "runs watch", args: "[ID]", short: "print events live (of one run, until it ends)", nargs: -2, long: true,
			flags: func(fs *flag.FlagSet) any {
				o := &runsWatchOpts{}
				fs.StringVar(&o.workflow, "workflow", "", "only events of this `workflow`")
				fs.DurationVar(&o.since, "since", 0, "first replay the captured events of this last `duration` (needs coordinators started with -event-capture)")
				fs.BoolVar(&o.all, "all", false, "include breaker and rejected-trigger events")
				return o
			}, run: runsWatch},
		{path: "runs cancel", args: "ID | --workflow NAME", short: "cancel a run, or every run of a workflow not ended (--workflow)", nargs: -2,
			flags: func(fs *flag.FlagSet) any {
				o := &cancelOpts{}
				fs.StringVar(&o.reason, "reason", "requested with canoctl", "why, recorded with the cancellation")
				fs.BoolVar(&o.wait, "wait", false, "wait until the runs have ended")
				fs.StringVar(&o.workflow, "workflow", "", "instead of one run: every run of this `workflow` that has not ended (lists them; --yes cancels them)")
				fs.StringVar(&o.status, "status", "", "with --workflow: only its runs in this `status`: running or scheduled")
				fs.BoolVar(&o.yes, "yes", false, "with --workflow: cancel the runs listed, rather than only list them")
				return o
			}, run: runsCancel},
		{path: "runs rerun", args: "ID", short: "start a new run like an ended one (same workflow, version, state and input)", nargs: 1, long: true,
			flags: func(fs *flag.FlagSet) any {
				o := &rerunOpts{}
				fs.BoolVar(&o.latest, "latest", false, "run the workflow's latest version instead of the run's")
				fs.StringVar(&o.key, "key", "", "idempotency `key`: a second rerun with it starts nothing and returns the first")
				fs.BoolVar(&o.wait, "wait", false, followHelp)
				return o
			}, run: runsRerun},
		{path: "runs start", args: "ID | --workflow NAME", short: "start a scheduled run now rather than at its time, or every scheduled run of a workflow (--workflow)", nargs: -2, long: true,
			flags: func(fs *flag.FlagSet) any {
				o := &startNowOpts{}
				fs.BoolVar(&o.wait, "wait", false, followHelp)
				fs.StringVar(&o.workflow, "workflow", "", "instead of one run: every scheduled run of this `workflow` (lists them; --yes starts them)")
				fs.BoolVar(&o.yes, "yes", false, "with --workflow: start the runs listed now, rather than only list them")
				return o
			}, run: runsStartNow},
	}
}

// runsStartMany starts every scheduled run of opts.workflow now; without
// opts.yes it only lists them (bulk.go). A run that starts on its own
// meanwhile is refused by StartNow, and reported with the failures.
func runsStartMany(ctx context.Context, e *env, opts *startNowOpts) error {
	rctx, cancel := e.reqCtx(ctx)
	runs, err := e.cl.List(rctx, &client.ListOpts{Workflow: opts.workflow, Status: client.RunScheduled})
	cancel()
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	b := bulk{what: "scheduled runs of " + opts.workflow, noun: "run", verb: "start", past: "started now", header: runsHeader}
	now := e.now()
	for _, r := range runs {
		b.add(r.ID, runRow(r, now)...)
	}
	if !opts.yes {
		return b.preview(e, map[string]any{"workflow": opts.workflow})
	}
	requested, failed := b.do(ctx, e, e.cl.StartNow)
	if e.c.json {
		if err := writeJSON(e.out, map[string]any{"workflow": opts.workflow, "start_requested": nonNil(requested)}); err != nil {
			return err
		}
	} else {
		b.requestedRuns(e, opts.workflow, requested, failed)
	}
	return errors.Join(failed...)
}

// runsHeader and runRow are the table a bulk action over runs previews.
var runsHeader = []string{"ID", "STATUS", "STATE", "START"}

func runRow(r *client.Run, now time.Time) []any {
	return []any{r.ID, r.Status, r.State, startedCell(r, now)}
}

// watchFirst, when wait is set, starts watching the events filter selects
// (what names), before an action that starts a run, so that follow misses
// none of the run's events; stop ends the watch. Without wait it watches
// nothing: the stream is nil and stop does nothing.
func watchFirst(ctx context.Context, e *env, wait bool, filter *client.EventFilter, what string) (st *client.EventStream, stop func(), err error) {
	if !wait {
		return nil, func() {}, nil
	}
	sctx, cancel := e.reqCtx(ctx)
	defer cancel()
	if st, err = e.cl.Events(sctx, filter); err != nil {
		return nil, nil, fmt.Errorf("watch events of %s: %w", what, err)
	}
	return st, st.Stop, nil
}

// followHelp is the help of --wait on the commands that start a run and
// follow it (trigger, runs rerun, runs start).
const followHelp = "print each transition live and end with the outcome; exit 0 only if the run completes"

type startNowOpts struct {
	wait, yes bool
	workflow  string
}

func runsStartNow(ctx context.Context, e *env, args []string, o any) error {
	opts := o.(*startNowOpts)
	switch {
	case len(args) == 1 && (opts.workflow != "" || opts.yes):
		return usagef("give a run ID or --workflow, not both (--yes goes with --workflow)")
	case len(args) == 0 && opts.workflow == "":
		return usagef("give the ID of the scheduled run to start now, or --workflow NAME to start that workflow's scheduled runs")
	case len(args) == 0 && opts.wait:
		return usagef("--wait follows one run: give its ID, or leave --wait out with --workflow")
	case len(args) == 0:
		return runsStartMany(ctx, e, opts)
	}
	r, err := getRun(ctx, e, args[0])
	if err != nil {
		return err
	}
	// A run not scheduled is refused by client.StartNow (ErrNotScheduled), which says why.
	st, stop, err := watchFirst(ctx, e, opts.wait, &client.EventFilter{Workflow: r.Workflow, RunID: r.ID}, r.ID)
	if err != nil {
		return err
	}
	defer stop()
	rctx, cancel := e.reqCtx(ctx)
	err = e.cl.StartNow(rctx, r.ID)
	cancel()
	if err != nil {
		return fmt.Errorf("start %s now: %w", r.ID, err)
	}
	if !opts.wait {
		if e.c.json {
			return writeJSON(e.out, map[string]string{"run_id": r.ID, "workflow": r.Workflow, "scheduled_for": r.StartAt.UTC().Format(time.RFC3339Nano)})
		}
		fmt.Fprintf(e.out, "starting run %s of %s now, scheduled for %s (follow it with: canoctl runs watch %s)\n",
			r.ID, r.Workflow, r.StartAt.UTC().Format(time.RFC3339), r.ID)
		return nil
	}
	if !e.c.json {
		fmt.Fprintf(e.out, "run %s of %s, started now (scheduled for %s)\n", r.ID, r.Workflow, r.StartAt.UTC().Format(time.RFC3339))
	}
	return follow(ctx, e, st, r.ID)
}

// statusNames lists the run statuses for a flag's help: "a, b or c".
func statusNames() string {
	var names []string
	for _, st := range client.RunStatuses() {
		names = append(names, string(st))
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

type rerunOpts struct {
	latest, wait bool
	key          string
}

func runsRerun(ctx context.Context, e *env, args []string, o any) error {
	opts := o.(*rerunOpts)
	old, err := getRun(ctx, e, args[0])
	if err != nil {
		return err
	}
	// A run not ended is refused by client.Rerun (ErrNotEnded), which says why.
	st, stop, err := watchFirst(ctx, e, opts.wait, &client.EventFilter{Workflow: old.Workflow}, old.Workflow)
	if err != nil {
		return err
	}
	defer stop()
	rctx, cancel := e.reqCtx(ctx)
	id, err := e.cl.Rerun(rctx, old.ID, &client.RerunOpts{LatestVersion: opts.latest, IdempotencyKey: opts.key, ErrorIfExists: opts.key != ""})
	cancel()
	existing := errors.Is(err, client.ErrRunExists)
	if err != nil && !existing {
		return fmt.Errorf("rerun %s: %w", old.ID, err)
	}
	if !opts.wait {
		if e.c.json {
			return writeJSON(e.out, map[string]any{"run_id": id, "workflow": old.Workflow, "rerun_of": old.ID, "existing": existing})
		}
		if existing {
			fmt.Fprintf(e.out, "nothing started: run %s of %s is already the rerun of %s with idempotency key %s (see it with: canoctl runs show %s)\n",
				id, old.Workflow, old.ID, opts.key, id)
			return nil
		}
		fmt.Fprintf(e.out, "started run %s of %s, a rerun of %s (follow it with: canoctl runs watch %s)\n", id, old.Workflow, old.ID, id)
		return nil
	}
	if !e.c.json {
		if existing {
			fmt.Fprintf(e.out, "run %s of %s, a rerun of %s (it already existed: nothing started)\n", id, old.Workflow, old.ID)
		} else {
			fmt.Fprintf(e.out, "run %s of %s, a rerun of %s\n", id, old.Workflow, old.ID)
		}
	}
	return follow(ctx, e, st, id)
}

// runView is a run for JSON output.
type runView struct {
	ID              string      `json:"id"`
	Workflow        string      `json:"workflow"`
	Version         string      `json:"version,omitempty"`
	Status          string      `json:"status"`
	State           string      `json:"state"`
	Step            int         `json:"step"`
	Path            []string    `json:"path,omitempty"`
	Error           *errorView  `json:"error,omitempty"`
	CreatedAt       *time.Time  `json:"created_at,omitempty"`
	UpdatedAt       *time.Time  `json:"updated_at,omitempty"`
	Deadline        *time.Time  `json:"deadline,omitempty"`
	StartAt         *time.Time  `json:"start_at,omitempty"`
	DurationMS      int64       `json:"duration_ms,omitempty"`
	CancelRequested bool        `json:"cancel_requested,omitempty"`
	IdempotencyKey  string      `json:"idempotency_key,omitempty"`
	Flow            string      `json:"flow,omitempty"`
	Input           any         `json:"input,omitempty"`
	Output          any         `json:"output,omitempty"`
	History         []stepView  `json:"history,omitempty"`
	Totals          *totalsView `json:"totals,omitempty"`
}

type stepView struct {
	Seq               int                  `json:"seq"`
	State             string               `json:"state"`
	Kind              string               `json:"kind"`
	Outcome           string               `json:"outcome,omitempty"`
	Entered           *time.Time           `json:"entered,omitempty"`
	Left              *time.Time           `json:"left,omitempty"`
	DurationMS        int64                `json:"duration_ms,omitempty"`
	Attempts          int                  `json:"attempts,omitempty"`
	Worker            string               `json:"worker,omitempty"`
	AttemptDurationMS int64                `json:"attempt_duration_ms,omitempty"`
	Error             *errorView           `json:"error,omitempty"`
	Split             *client.SplitSummary `json:"split,omitempty"`
}

type totalsView struct {
	Steps          int `json:"steps"`
	Dropped        int `json:"dropped"`
	Attempts       int `json:"attempts"`
	FailedAttempts int `json:"failed_attempts"`
	FailedTasks    int `json:"failed_tasks"`
}

// runDuration is how long the run took (or has taken so far at now),
// from its start: 0 for a run that has not started.
func runDuration(r *client.Run, now time.Time) time.Duration {
	if r.Status == client.RunScheduled {
		return 0
	}
	end := r.UpdatedAt
	if !r.Status.Terminal() {
		end = now
	}
	return max(since(startOf(r), end), 0)
}

// startOf is when r started (or starts): its scheduled start, for a run
// triggered to start later, else its trigger.
func startOf(r *client.Run) time.Time {
	if !r.StartAt.IsZero() {
		return r.StartAt
	}
	return r.CreatedAt
}

func viewRun(r *client.Run, now time.Time, full bool) runView {
	v := runView{
		ID: r.ID, Workflow: r.Workflow, Version: r.Version, Status: string(r.Status),
		State: r.State, Step: r.Step, Path: r.Path, Error: viewError(r.Err),
		CreatedAt: timePtr(r.CreatedAt), UpdatedAt: timePtr(r.UpdatedAt), Deadline: timePtr(r.Deadline), StartAt: timePtr(r.StartAt),
		DurationMS: runDuration(r, now).Milliseconds(), CancelRequested: r.CancelRequested,
		IdempotencyKey: r.IdempotencyKey, Flow: r.Flow,
	}
	if !full {
		v.Path = nil
		return v
	}
	v.Input = pretty.Decoded(r.Input)
	v.Output = pretty.Decoded(r.Output)
	for _, s := range r.History {
		v.History = append(v.History, stepView{
			Seq: s.Seq, State: s.State, Kind: string(s.Kind), Outcome: string(s.Outcome),
			Entered: timePtr(s.Entered), Left: timePtr(s.Left), DurationMS: since(s.Entered, s.Left).Milliseconds(),
			Attempts: s.Attempts, Worker: s.Worker, AttemptDurationMS: s.AttemptDuration.Milliseconds(),
			Error: viewError(s.Err), Split: s.Split,
		})
	}
	t := r.Totals
	v.Totals = &totalsView{t.Steps, t.Dropped, t.Attempts, t.FailedAttempts, t.FailedTasks}
	return v
}

// filterSince keeps the runs created at or after now-d (all when d is 0).
func filterSince(runs []*client.Run, now time.Time, d time.Duration) []*client.Run {
	if d <= 0 {
		return runs
	}
	cut := now.Add(-d)
	var out []*client.Run
	for _, r := range runs {
		if !r.CreatedAt.Before(cut) {
			out = append(out, r)
		}
	}
	return out
}

func parseStatus(s string) (client.RunStatus, error) {
	if s == "" {
		return "", nil
	}
	var names []string
	for _, st := range client.RunStatuses() {
		if string(st) == s {
			return st, nil
		}
		names = append(names, string(st))
	}
	return "", usagef("--status %q is not a run status: use %s", s, strings.Join(names, ", "))
}

func runsList(ctx context.Context, e *env, _ []string, o any) error {
	opts := o.(*runsListOpts)
	st, err := parseStatus(opts.status)
	if err != nil {
		return err
	}
	if opts.limit < 0 {
		return usagef("--limit must be 0 or more")
	}
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	// Every match, cut to --limit here: List reads every record anyway,
	// and so the runs left out are counted (and --since filters before
	// the cut, not after it).
	all, err := e.cl.List(rctx, &client.ListOpts{Workflow: opts.workflow, Status: st})
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	now := e.now()
	runs := filterSince(all, now, opts.since)
	more := 0
	if opts.limit > 0 && len(runs) > opts.limit {
		runs, more = runs[:opts.limit], len(runs)-opts.limit
	}
	err = printList(e, runs, func(r *client.Run) runView { return viewRun(r, now, false) }, "no runs",
		[]string{"ID", "WORKFLOW", "STATUS", "STATE", "STEP", "STARTED", "DURATION", "ERROR"},
		func(r *client.Run) []any {
			return []any{r.ID, r.Workflow, r.Status, r.State, r.Step, startedCell(r, now), fmtDur(runDuration(r, now)),
				truncate(errString(r.Err), 60)}
		})
	if err != nil {
		return err
	}
	// Notes go to stderr, so stdout stays the table or the JSON document.
	if more > 0 {
		fmt.Fprintln(e.io.Stderr, moreRunsNote(more, opts))
	}
	if len(all) == 0 && opts.workflow != "" {
		if note := unknownWorkflowNote(ctx, e, opts.workflow); note != "" {
			fmt.Fprintln(e.io.Stderr, note)
		}
	}
	return nil
}

// moreRunsNote says that more runs than --limit match, and how to see
// them: the filters not given yet narrow the list. It is a pure function.
func moreRunsNote(more int, opts *runsListOpts) string {
	var narrow []string
	if opts.workflow == "" {
		narrow = append(narrow, "--workflow")
	}
	if opts.status == "" {
		narrow = append(narrow, "--status")
	}
	if opts.since <= 0 {
		narrow = append(narrow, "--since")
	}
	noun := "runs"
	if more == 1 {
		noun = "run"
	}
	s := fmt.Sprintf("… and %d more %s: use --limit 0 for all", more, noun)
	switch len(narrow) {
	case 0:
		return s
	case 1:
		return s + ", or narrow with " + narrow[0]
	default:
		return s + ", or narrow with " + strings.Join(narrow[:len(narrow)-1], ", ") + " or " + narrow[len(narrow)-1]
	}
}

// unknownWorkflowNote says that no worker has registered workflow name,
// naming the registered one closest to it; "" when it is registered or
// canoctl cannot tell.
func unknownWorkflowNote(ctx context.Context, e *env, name string) string {
	near, unknown := unregistered(ctx, e, name)
	if !unknown {
		return ""
	}
	mean := ""
	if near != "" {
		mean = " (did you mean " + near + "?)"
	}
	return fmt.Sprintf("no workflow named %s is registered%s; list them with: canoctl workflows list", name, mean)
}

// unregistered reports whether no worker has registered workflow name
// (false when canoctl cannot tell) and, if so, the registered name
// closest to it ("" if none is close).
func unregistered(ctx context.Context, e *env, name string) (closestName string, unknown bool) {
	rctx, cancel := e.reqCtx(ctx)
	_, err := e.cl.Workflow(rctx, name, "")
	cancel()
	if !errors.Is(err, client.ErrWorkflowNotFound) {
		return "", false
	}
	return closest(name, workflowNames(ctx, e)), true
}

// workflowNames are the registered workflows' names (none when they
// cannot be read: they only feed a suggestion).
func workflowNames(ctx context.Context, e *env) []string {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	wfs, err := e.cl.Workflows(rctx)
	if err != nil {
		return nil
	}
	names := make([]string, len(wfs))
	for i, w := range wfs {
		names[i] = w.Name
	}
	return names
}

// neverStarted reports whether r ended (was cancelled, or failed) before
// the start it was scheduled for.
func neverStarted(r *client.Run) bool {
	return r.Status.Terminal() && !r.Started()
}

// startedCell is a run's STARTED cell in runs list: when it started, or
// starts for a scheduled run (its status says so); "-" for a run that
// ended before its start (runs show tells when that was to be).
func startedCell(r *client.Run, now time.Time) string {
	if neverStarted(r) {
		return "-"
	}
	return fmtTime(startOf(r), now)
}

// getRun reads a run, turning "not found" into a message that says what to do.
func getRun(ctx context.Context, e *env, id string) (*client.Run, error) {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	r, err := e.cl.Get(rctx, id)
	if errors.Is(err, client.ErrNotFound) {
		return nil, fmt.Errorf("run %q not found: it was never triggered, or it ended longer ago than the run retention (list runs with: canoctl runs list)", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	return r, nil
}

func runsShow(ctx context.Context, e *env, args []string, _ any) error {
	r, err := getRun(ctx, e, args[0])
	if err != nil {
		return err
	}
	now := e.now()
	if e.c.json {
		err = writeJSON(e.out, viewRun(r, now, true))
	} else {
		printRun(e.out, r, now)
	}
	if err == nil && r.Status == client.RunRunning {
		// A running run whose state no live worker serves waits for ever
		// with nothing in the record to say so (on stderr: stdout stays
		// the record).
		if hint := unservedHint(ctx, e, r.ID); hint != "" {
			fmt.Fprintln(e.io.Stderr, hint)
		}
	}
	return err
}

func printRun(w io.Writer, r *client.Run, now time.Time) {
	kv := newTable(w)
	line := func(k string, v any) {
		if s := fmt.Sprint(v); s != "" && s != "-" {
			kv.row(k+":", s)
		}
	}
	line("Run", r.ID)
	wf := r.Workflow
	if r.Version != "" {
		wf += " (version " + r.Version + ")"
	}
	line("Workflow", wf)
	line("Status", r.Status)
	line("State", fmt.Sprintf("%s (step %d)", r.State, r.Step))
	switch {
	case r.StartAt.IsZero():
		line("Started", fmtTime(r.CreatedAt, now))
	case r.Status == client.RunScheduled:
		line("Triggered", fmtTime(r.CreatedAt, now))
		line("Starts", fmtTime(r.StartAt, now)+" (start it now with: canoctl runs start "+r.ID+"; cancel it with: canoctl runs cancel "+r.ID+")")
	case neverStarted(r):
		line("Triggered", fmtTime(r.CreatedAt, now))
		line("Was to start", fmtTime(r.StartAt, now)+" (ended before its start)")
	default:
		line("Triggered", fmtTime(r.CreatedAt, now))
		line("Started", fmtTime(r.StartAt, now))
	}
	if r.Status.Terminal() {
		line("Ended", fmtTime(r.UpdatedAt, now))
	}
	line("Duration", fmtDur(runDuration(r, now)))
	line("Deadline", fmtTime(r.Deadline, now))
	if r.CancelRequested {
		line("Cancel", "requested")
	}
	line("Idempotency key", r.IdempotencyKey)
	if r.Flow != "" {
		line("Flow", r.Flow+" (slot "+fmtTime(r.FlowSlot, now)+")")
	}
	line("Path", strings.Join(r.Path, " → "))
	t := r.Totals
	line("Totals", fmt.Sprintf("%s (%d dropped from history), %s, %s, %s", counted(t.Steps, "step"), t.Dropped,
		counted(t.Attempts, "attempt"), counted(t.FailedAttempts, "failed attempt"), counted(t.FailedTasks, "failed task")))
	if in := pretty.Decoded(r.Input); in != nil {
		line("Input", jsonText(in))
	}
	if out := pretty.Decoded(r.Output); out != nil {
		line("Output", jsonText(out))
	}
	_ = kv.flush()
	if r.Err != nil {
		fmt.Fprintln(w)
		msg := oneLine(r.Err.Error())
		fmt.Fprintln(w, "Error:", msg)
		if where := errorPlace(viewError(r.Err), msg); where != "" {
			fmt.Fprintln(w, "  "+where)
		}
	}
	if len(r.History) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "History:")
	var splits []string
	ht := newTable(w, "STEP", "STATE", "KIND", "OUTCOME", "ENTERED", "LEFT", "DURATION", "ATTEMPTS", "WORKER", "TASK TIME", "ERROR")
	for _, s := range r.History {
		attempts := ""
		if s.Attempts > 0 {
			attempts = fmt.Sprint(s.Attempts)
		}
		outcome := string(s.Outcome)
		if outcome == "" {
			outcome = "(current)"
		}
		ht.row(s.Seq, s.State, s.Kind, outcome, fmtTime(s.Entered, now), fmtTime(s.Left, now),
			fmtDur(since(s.Entered, s.Left)), attempts, s.Worker, fmtDur(s.AttemptDuration), truncate(errString(s.Err), 80))
		if sp := s.Split; sp != nil {
			splits = append(splits, fmt.Sprintf("  step %d (%s) %s", s.Seq, s.State, splitText(sp)))
		}
	}
	_ = ht.flush()
	if len(splits) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Splits:")
		for _, s := range splits {
			fmt.Fprintln(w, s)
		}
	}
}

// errorPlace is where the error of ev happened, "in state S (attempt N,
// path P)", for a message msg that does not say it already (the message
// of an fsm.StateError does); "" when there is nothing to add. It is a
// pure function.
func errorPlace(ev *errorView, msg string) string {
	if ev == nil || ev.State == "" || strings.Contains(msg, fmt.Sprintf("in state %q", ev.State)) {
		return ""
	}
	var more []string
	if ev.Attempt > 0 {
		more = append(more, fmt.Sprintf("attempt %d", ev.Attempt))
	}
	if len(ev.Path) > 0 {
		more = append(more, "path "+strings.Join(ev.Path, " → "))
	}
	if len(more) == 0 {
		return "in state " + ev.State
	}
	return "in state " + ev.State + " (" + strings.Join(more, ", ") + ")"
}

// splitText summarises a split step in one line.
func splitText(sp *client.SplitSummary) string {
	var b strings.Builder
	b.WriteString("split: join ")
	b.WriteString(sp.Strategy)
	if sp.Required > 0 {
		fmt.Fprintf(&b, " (needs %d)", sp.Required)
	}
	kind := "static"
	if sp.Dynamic {
		kind = "dynamic"
	}
	fmt.Fprintf(&b, ", %d %s branches: %d ok, %d failed, %d timed out, %d cancelled", sp.Total, kind, sp.Succeeded, sp.Failed, sp.TimedOut, sp.Cancelled)
	if sp.Decision != "" {
		b.WriteString("; decided " + sp.Decision)
		if sp.JoinTimeout {
			b.WriteString(" (join timeout)")
		}
	} else {
		b.WriteString("; undecided")
	}
	return b.String()
}

// eventView is an event for JSON output (one line each).
type eventView struct {
	Type     string     `json:"type"`
	RunID    string     `json:"run_id"`
	Workflow string     `json:"workflow"`
	State    string     `json:"state,omitempty"`
	Step     int        `json:"step"`
	Status   string     `json:"status,omitempty"`
	Time     time.Time  `json:"time"`
	Detail   string     `json:"detail,omitempty"`
	Error    *errorView `json:"error,omitempty"`
	Path     []string   `json:"path,omitempty"`
}

func viewEvent(ev client.Event) eventView {
	return eventView{Type: string(ev.Type), RunID: ev.RunID, Workflow: ev.Workflow, State: ev.State,
		Step: ev.Step, Status: string(ev.Status), Time: ev.Time, Detail: ev.Detail, Error: viewError(ev.Err), Path: ev.Path}
}

// eventText is one readable line for an event; withRun adds the run and
// workflow (for streams of several runs).
func eventText(ev client.Event, withRun bool) string {
	var b strings.Builder
	b.WriteString(ev.Time.Format("15:04:05.000"))
	b.WriteString("  ")
	if withRun {
		fmt.Fprintf(&b, "%-22s %-16s ", ev.RunID, ev.Workflow)
	}
	fmt.Fprintf(&b, "%-9s", ev.Type)
	switch ev.Type {
	case client.EventBreaker:
		fmt.Fprintf(&b, " breaker %s %s", ev.RunID, ev.State)
	case client.EventCompleted:
		fmt.Fprintf(&b, " in %s", ev.State)
	default:
		if ev.State != "" {
			fmt.Fprintf(&b, " %s", ev.State)
		}
	}
	if ev.Type != client.EventBreaker && ev.Type != client.EventRejected {
		fmt.Fprintf(&b, " (step %d)", ev.Step)
	}
	if ev.Detail != "" {
		b.WriteString(" " + oneLine(ev.Detail))
	}
	if ev.Err != nil {
		b.WriteString(": " + oneLine(ev.Err.Error()))
	}
	if len(ev.Path) > 0 && ev.Type.Terminal() {
		b.WriteString("  path " + strings.Join(ev.Path, " → "))
	}
	return b.String()
}

func printEvent(e *env, ev client.Event, withRun bool) {
	if e.c.json {
		_ = writeJSONLine(e.out, viewEvent(ev))
		return
	}
	fmt.Fprintln(e.out, eventText(ev, withRun))
}

func runsWatch(ctx context.Context, e *env, args []string, o any) error {
	opts := o.(*runsWatchOpts)
	f := &client.EventFilter{Workflow: opts.workflow}
	if opts.since > 0 {
		f.Since = e.now().Add(-opts.since)
	}
	var run *client.Run
	if len(args) == 1 {
		r, err := getRun(ctx, e, args[0])
		if err != nil {
			return err
		}
		run = r
		f.Workflow, f.RunID = r.Workflow, r.ID
		if r.Status.Terminal() {
			// The run has ended: replay what the capture stream still
			// holds of it.
			f.FromStart, f.Since = true, time.Time{}
		}
	}
	sctx, cancel := e.reqCtx(ctx)
	st, err := e.cl.Events(sctx, f)
	cancel()
	if run != nil && run.Status.Terminal() && errors.Is(err, client.ErrNoEventCapture) {
		// No capture stream, so no past events: the record tells how the
		// run ended.
		if !e.c.json {
			fmt.Fprintf(e.out, "run %s has ended; this deployment keeps no past events to replay "+
				"(coordinators started with -event-capture do); from its record:\n", run.ID)
		}
		printEvent(e, endEvent(run), false)
		return nil
	}
	if err != nil {
		return fmt.Errorf("watch events: %w", err)
	}
	defer st.Stop()
	if run != nil {
		if !e.c.json {
			fmt.Fprintf(e.out, "watching run %s (Ctrl-C to stop)\n", run.ID)
		}
		if !run.Status.Terminal() {
			return watchRun(ctx, e, st, run.ID)
		}
	}
	for {
		ev, err := st.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: a normal end for a watch
			}
			return fmt.Errorf("watch events: %w", err)
		}
		if !opts.all && run == nil && (ev.Type == client.EventBreaker || ev.Type == client.EventRejected) {
			continue
		}
		printEvent(e, ev, run == nil)
		if run != nil && ev.Type.Terminal() {
			return nil
		}
	}
}

// watchRun prints a running run's live events until its terminal one.
// Events are at most once, so Await runs alongside: if the run ends and
// its terminal event does not follow within TailDefault (or ended
// before the watch began), the end is printed from the record.
func watchRun(ctx context.Context, e *env, st *client.EventStream, id string) error {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	evs, awaited := watchEnd(sctx, e, st, id)
	var tail <-chan time.Time
	var end *client.Run
	quiet := time.NewTimer(QuietHintAfter)
	defer quiet.Stop()
	for {
		select {
		case <-quiet.C:
			if hint := unservedHint(sctx, e, id); hint != "" {
				fmt.Fprintln(e.io.Stderr, hint)
			}
		case n := <-evs:
			quiet.Reset(QuietHintAfter)
			if n.err != nil {
				if ctx.Err() != nil {
					return nil // interrupted: a normal end for a watch
				}
				return fmt.Errorf("watch events: %w", n.err)
			}
			printEvent(e, n.ev, false)
			if n.ev.Type.Terminal() {
				return nil
			}
		case a := <-awaited:
			if a.r == nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch run %s: %w", id, a.err)
			}
			end, tail = a.r, time.After(TailDefault)
		case <-tail:
			printEvent(e, endEvent(end), false)
			return nil
		}
	}
}

// nextEvent is one result of EventStream.Next.
type nextEvent struct {
	ev  client.Event
	err error
}

// awaited is what Await returned.
type awaited struct {
	r   *client.Run
	err error
}

// watchEnd reads st and awaits run id's end, both until ctx is done: a
// wait for a run's end reads the two, as events are at most once (the
// terminal one may be lost, or the run may have ended before the watch).
// The events channel delivers each event, then Next's error if it fails.
func watchEnd(ctx context.Context, e *env, st *client.EventStream, id string) (<-chan nextEvent, <-chan awaited) {
	evs := make(chan nextEvent)
	go func() {
		for {
			ev, err := st.Next(ctx)
			select {
			case evs <- nextEvent{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	end := make(chan awaited, 1)
	go func() {
		r, err := e.cl.Await(ctx, id)
		end <- awaited{r, err}
	}()
	return evs, end
}

// endEvent is the terminal event of ended run r, made from its record
// (or from what Await returned).
func endEvent(r *client.Run) client.Event {
	typ := client.EventCompleted
	switch r.Status {
	case client.RunFailed:
		typ = client.EventFailed
	case client.RunCancelled:
		typ = client.EventCancelled
	}
	return client.Event{Type: typ, RunID: r.ID, Workflow: r.Workflow, State: r.State, Step: r.Step,
		Status: r.Status, Time: r.UpdatedAt, Err: r.Err, Path: r.Path}
}

func runsCancel(ctx context.Context, e *env, args []string, o any) error {
	opts := o.(*cancelOpts)
	switch {
	case len(args) == 1 && (opts.workflow != "" || opts.status != "" || opts.yes):
		return usagef("give a run ID or --workflow, not both (--status and --yes go with --workflow)")
	case len(args) == 0 && opts.workflow == "":
		return usagef("give the ID of the run to cancel, or --workflow NAME to cancel that workflow's runs")
	case len(args) == 0:
		return runsCancelMany(ctx, e, opts)
	}
	id := args[0]
	r, err := getRun(ctx, e, id)
	if err != nil {
		return err
	}
	if r.Status.Terminal() {
		return fmt.Errorf("run %s has already ended (%s): nothing to cancel", id, r.Status)
	}
	rctx, cancel := e.reqCtx(ctx)
	err = e.cl.Cancel(rctx, id, opts.reason)
	cancel()
	if err != nil {
		return fmt.Errorf("cancel run %s: %w", id, err)
	}
	if !opts.wait {
		if e.c.json {
			return writeJSON(e.out, map[string]any{"run_id": id, "cancel_requested": true})
		}
		fmt.Fprintf(e.out, "cancel requested for run %s (follow it with: canoctl runs watch %s)\n", id, id)
		return nil
	}
	ended, err := e.cl.Await(ctx, id)
	if ended == nil {
		return fmt.Errorf("await run %s: %w", id, err)
	}
	if e.c.json {
		return writeJSON(e.out, viewRun(ended, e.now(), false))
	}
	fmt.Fprintf(e.out, "run %s %s in state %s\n", id, ended.Status, ended.State)
	return nil
}

// runsCancelMany cancels every run of opts.workflow that has not ended
// (in opts.status, if set); without opts.yes it only lists them (bulk.go).
// A run that ends on its own meanwhile is not changed by its cancel (with
// opts.wait, its outcome says so).
func runsCancelMany(ctx context.Context, e *env, opts *cancelOpts) error {
	st, err := parseStatus(opts.status)
	if err != nil {
		return err
	}
	if st != "" && st.Terminal() {
		return usagef("--status %s: an ended run cannot be cancelled; give running or scheduled, or leave it out for both", st)
	}
	rctx, cancel := e.reqCtx(ctx)
	runs, err := e.cl.List(rctx, &client.ListOpts{Workflow: opts.workflow, Status: st})
	cancel()
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	b := bulk{what: "runs of " + opts.workflow, noun: "run", verb: "cancel", past: "cancelled"}
	if st != "" {
		b.what = string(st) + " " + b.what
	}
	b.header = runsHeader
	now := e.now()
	for _, r := range runs {
		if !r.Status.Terminal() {
			b.add(r.ID, runRow(r, now)...)
		}
	}
	if !opts.yes {
		return b.preview(e, map[string]any{"workflow": opts.workflow})
	}
	requested, failed := b.do(ctx, e, func(ctx context.Context, id string) error { return e.cl.Cancel(ctx, id, opts.reason) })
	var outcomes []*client.Run
	if opts.wait {
		for _, id := range requested {
			r, err := e.cl.Await(ctx, id)
			if r == nil {
				failed = append(failed, fmt.Errorf("await run %s: %w", id, err))
				continue
			}
			outcomes = append(outcomes, r)
		}
	}
	if e.c.json {
		v := map[string]any{"workflow": opts.workflow, "cancel_requested": nonNil(requested)}
		if opts.wait {
			views := make([]runView, 0, len(outcomes))
			for _, r := range outcomes {
				views = append(views, viewRun(r, e.now(), false))
			}
			v["runs"] = views
		}
		if err := writeJSON(e.out, v); err != nil {
			return err
		}
	} else {
		for _, r := range outcomes {
			fmt.Fprintf(e.out, "run %s %s in state %s\n", r.ID, r.Status, r.State)
		}
		b.requestedRuns(e, opts.workflow, requested, failed)
	}
	return errors.Join(failed...)
}

// counted writes n and the noun, plural unless n is 1: "1 step", "3 steps".
func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
