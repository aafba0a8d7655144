package canoctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/scheduler"
)

type flowAddOpts struct {
	workflow, cron, tz, input, state, misfire, file string
	every                                           time.Duration
	manual, update, force                           bool
}

func flowCommands() []command {
	one := func(path, short string, do func(ctx context.Context, c *scheduler.Client, id string) error, done string) command {
		return command{path: path, args: "ID", short: short, nargs: 1, run: func(ctx context.Context, e *env, args []string, _ any) error {
			rctx, cancel := e.reqCtx(ctx)
			defer cancel()
			if err := flowErr(args[0], do(rctx, e.flows, args[0])); err != nil {
				return err
			}
			if e.c.json {
				return writeJSON(e.out, map[string]any{"flow": args[0], "ok": true})
			}
			fmt.Fprintf(e.out, done+"\n", args[0])
			return nil
		}}
	}
	return []command{
		{path: "flows list", short: "list scheduled flows with their status", nargs: 0, run: flowsList},
		{path: "flows status", args: "ID", short: "show a flow and its status", nargs: 1, run: flowsStatus},
		{path: "flows add", args: "[ID]", short: "add a flow (--cron, --every or --manual), or the flows of a --file", nargs: -2,
			flags: func(fs *flag.FlagSet) any {
				o := &flowAddOpts{}
				fs.StringVar(&o.workflow, "workflow", "", "`workflow` each run starts")
				fs.StringVar(&o.cron, "cron", "", "cron `expression` (6 fields with seconds, 5 fields, or @every/@hourly)")
				fs.StringVar(&o.tz, "tz", "", "IANA time `zone` of --cron (default UTC)")
				fs.DurationVar(&o.every, "every", 0, "run at once, then this `interval` after each run ends")
				fs.BoolVar(&o.manual, "manual", false, "run only on canoctl flows trigger")
				fs.StringVar(&o.input, "input", "", "run input: `JSON`, or @file")
				fs.StringVar(&o.state, "state", "", "initial `state` instead of the workflow's")
				fs.StringVar(&o.misfire, "misfire", "", "cron misfire policy: skip (default) or catch_up")
				fs.StringVar(&o.file, "file", "", "JSON flow `file` ({\"flows\": [...]}) to add instead")
				fs.BoolVar(&o.update, "update", false, "replace flows that exist already")
				fs.BoolVar(&o.force, "force", false, "add the flow even if no worker has registered its workflow yet (its runs fail until one has)")
				return o
			}, run: flowsAdd},
		one("flows rm", "delete a flow (a run in progress goes on)", func(ctx context.Context, c *scheduler.Client, id string) error { return c.Remove(ctx, id) }, "removed flow %s"),
		one("flows trigger", "run a flow now", func(ctx context.Context, c *scheduler.Client, id string) error { return c.Trigger(ctx, id) }, "flow %s will run now"),
		one("flows reset", "clear a flow's failure streak and untrip it", func(ctx context.Context, c *scheduler.Client, id string) error { return c.Reset(ctx, id) }, "reset flow %s"),
		one("flows pause", "stop firing a flow on its schedule (flows trigger still runs it)", func(ctx context.Context, c *scheduler.Client, id string) error { return c.Pause(ctx, id) }, "paused flow %s (resume it with: canoctl flows resume %[1]s)"),
		one("flows resume", "fire a paused flow again from its next scheduled time (missed slots are skipped)", func(ctx context.Context, c *scheduler.Client, id string) error { return c.Resume(ctx, id) }, "resumed flow %s"),
	}
}

// flowErr says what to do about scheduler errors.
func flowErr(id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, scheduler.ErrFlowNotFound):
		return fmt.Errorf("flow %q not found (list flows with: canoctl flows list)", id)
	case errors.Is(err, scheduler.ErrFlowTripped):
		return fmt.Errorf("flow %s is tripped after repeated failures: reset it first with: canoctl flows reset %s", id, id)
	case errors.Is(err, scheduler.ErrFlowRunning):
		return fmt.Errorf("flow %s is running already: wait for its run to end", id)
	case errors.Is(err, scheduler.ErrFlowExists):
		return fmt.Errorf("flow %s exists already: pass --update to replace it", id)
	}
	return fmt.Errorf("flow %s: %w", id, err)
}

type flowView struct {
	ID            string     `json:"id"`
	Workflow      string     `json:"workflow"`
	InitialState  string     `json:"initial_state,omitempty"`
	Kind          string     `json:"kind"`
	Cron          string     `json:"cron,omitempty"`
	TimeZone      string     `json:"time_zone,omitempty"`
	EveryMS       int64      `json:"every_ms,omitempty"`
	Misfire       string     `json:"misfire,omitempty"`
	Status        string     `json:"status"`
	RunCount      uint64     `json:"run_count"`
	LastRun       *time.Time `json:"last_run,omitempty"`
	CurrentRun    string     `json:"current_run,omitempty"`
	FailureStreak uint32     `json:"failure_streak"`
	NextEligible  *time.Time `json:"next_eligible,omitempty"`
	NextSlot      *time.Time `json:"next_slot,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	SkippedFires  uint64     `json:"skipped_fires"`
	Paused        bool       `json:"paused"`
	PausedAt      *time.Time `json:"paused_at,omitempty"`
}

func viewFlow(f scheduler.FlowInfo) flowView {
	s := f.Flow.Schedule
	return flowView{ID: f.Flow.ID, Workflow: f.Flow.Workflow, InitialState: f.Flow.InitialState, Kind: string(s.Kind),
		Cron: s.Cron, TimeZone: s.TimeZone, EveryMS: s.Every.Milliseconds(), Misfire: string(f.Flow.Misfire),
		Status: string(f.Status), RunCount: f.RunCount, LastRun: timePtr(f.LastRun), CurrentRun: f.CurrentRun,
		FailureStreak: f.FailureStreak, NextEligible: timePtr(f.NextEligible), NextSlot: timePtr(f.NextSlot), LastError: f.LastError, SkippedFires: f.SkippedFires,
		Paused: f.Paused, PausedAt: timePtr(f.PausedAt)}
}

func scheduleText(s scheduler.Schedule) string {
	switch s.Kind {
	case scheduler.KindCron:
		if s.TimeZone != "" {
			return "cron " + s.Cron + " " + s.TimeZone
		}
		return "cron " + s.Cron
	case scheduler.KindEvery:
		return "every " + s.Every.String()
	}
	return string(s.Kind)
}

func flowsList(ctx context.Context, e *env, _ []string, _ any) error {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	fs, err := e.flows.List(rctx)
	if err != nil {
		return fmt.Errorf("list flows: %w", err)
	}
	now := e.now()
	return printList(e, fs, viewFlow, "no flows (add one with: canoctl flows add ID --workflow W --every 1m)",
		[]string{"ID", "WORKFLOW", "SCHEDULE", "STATUS", "RUNS", "LAST RUN", "NEXT ELIGIBLE", "STREAK", "LAST ERROR"},
		func(f scheduler.FlowInfo) []any {
			return []any{f.Flow.ID, f.Flow.Workflow, scheduleText(f.Flow.Schedule), f.StatusLabel(), f.RunCount, fmtTime(f.LastRun, now),
				fmtTime(f.NextEligible, now), f.FailureStreak, truncate(f.LastError, 50)}
		})
}

func flowsStatus(ctx context.Context, e *env, args []string, _ any) error {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	f, err := e.flows.Status(rctx, args[0])
	if err := flowErr(args[0], err); err != nil {
		return err
	}
	if e.c.json {
		return writeJSON(e.out, viewFlow(f))
	}
	now := e.now()
	t := newTable(e.out)
	t.row("Flow:", f.Flow.ID)
	t.row("Workflow:", f.Flow.Workflow)
	t.row("Schedule:", scheduleText(f.Flow.Schedule))
	t.row("Status:", f.StatusLabel())
	if f.Paused {
		t.row("Paused:", fmtTime(f.PausedAt, now))
	}
	t.row("Runs:", f.RunCount)
	t.row("Last run:", fmtTime(f.LastRun, now))
	t.row("Current run:", f.CurrentRun)
	t.row("Failure streak:", f.FailureStreak)
	switch {
	case f.Flow.Schedule.Kind == scheduler.KindCron && f.Paused:
		t.row("Next slot:", "none while paused (resume it with: canoctl flows resume "+f.Flow.ID+")")
	case f.Flow.Schedule.Kind == scheduler.KindCron:
		t.row("Next slot:", slotText(f.NextSlot, f.Flow.Schedule.TimeZone, now))
	}
	t.row("Next eligible:", fmtTime(f.NextEligible, now))
	t.row("Skipped fires:", f.SkippedFires)
	t.row("Last error:", f.LastError)
	return t.flush()
}

func flowsAdd(ctx context.Context, e *env, args []string, o any) error {
	opts := o.(*flowAddOpts)
	var flows []scheduler.Flow
	if opts.file != "" {
		if len(args) > 0 {
			return usagef("flows add takes either an ID or --file, not both")
		}
		var err error
		if flows, err = scheduler.LoadFlowFile(opts.file); err != nil {
			return err
		}
	} else {
		f, err := flowFromFlags(args, opts)
		if err != nil {
			return err
		}
		flows = append(flows, f)
	}
	if !opts.force {
		if err := checkWorkflows(ctx, e, flows); err != nil {
			return err
		}
	}
	for _, f := range flows {
		rctx, cancel := e.reqCtx(ctx)
		err := e.flows.Add(rctx, f)
		verb := "added"
		if errors.Is(err, scheduler.ErrFlowExists) && opts.update {
			err, verb = e.flows.Update(rctx, f), "updated"
		}
		cancel()
		if err := flowErr(f.ID, err); err != nil {
			return err
		}
		if !e.c.json {
			fmt.Fprintf(e.out, "%s flow %s (%s, %s)\n", verb, f.ID, f.Workflow, scheduleText(f.Schedule))
		}
	}
	if e.c.json {
		ids := []string{}
		for _, f := range flows {
			ids = append(ids, f.ID)
		}
		return writeJSON(e.out, map[string]any{"flows": ids, "ok": true})
	}
	return nil
}

// checkWorkflows refuses flows whose workflow no worker has registered:
// their runs would only fail (the flow backing off), most likely for a
// misspelt name. flows add --force skips it.
func checkWorkflows(ctx context.Context, e *env, flows []scheduler.Flow) error {
	seen := map[string]bool{}
	for _, f := range flows {
		if seen[f.Workflow] {
			continue
		}
		seen[f.Workflow] = true
		rctx, cancel := e.reqCtx(ctx)
		_, err := e.cl.Workflow(rctx, f.Workflow, "")
		cancel()
		if errors.Is(err, client.ErrWorkflowNotFound) {
			return fmt.Errorf("flow %s: unknown workflow %q: no worker has registered it (list workflows with: canoctl workflows list; add the flow anyway, before its workers have started, with --force)", f.ID, f.Workflow)
		}
		if err != nil {
			return fmt.Errorf("flow %s: read workflow %s: %w", f.ID, f.Workflow, err)
		}
	}
	return nil
}

// flowFromFlags builds the flow of flows add ID --workflow ... .
func flowFromFlags(args []string, o *flowAddOpts) (scheduler.Flow, error) {
	if len(args) != 1 {
		return scheduler.Flow{}, usagef("flows add needs an ID (or --file)")
	}
	if o.workflow == "" {
		return scheduler.Flow{}, usagef("flows add needs --workflow")
	}
	f := scheduler.Flow{ID: args[0], Workflow: o.workflow, InitialState: o.state, Misfire: scheduler.Misfire(o.misfire)}
	n := 0
	if o.cron != "" {
		n++
		f.Schedule = scheduler.CronIn(o.cron, o.tz)
	}
	if o.every > 0 {
		n++
		f.Schedule = scheduler.Every(o.every)
	}
	if o.manual {
		n++
		f.Schedule = scheduler.Manual()
	}
	if n != 1 {
		return scheduler.Flow{}, usagef("flows add needs exactly one of --cron, --every or --manual")
	}
	in, err := parseInput(o.input)
	if err != nil {
		return scheduler.Flow{}, err
	}
	if in != nil {
		if f.Input, err = scheduler.EncodeInput(in); err != nil {
			return scheduler.Flow{}, fmt.Errorf("encode --input: %w", err)
		}
	}
	return f, nil
}

// slotText shows a cron flow's next slot in UTC, in the schedule's own time
// zone when it has one, and how far off it is: "2026-12-02 01:00:00 UTC
// (02:00:00 Europe/Paris), in 5h12m".
func slotText(next time.Time, tz string, now time.Time) string {
	if next.IsZero() {
		return "-"
	}
	out := fmtTime(next.UTC(), now.UTC()) + " UTC"
	if loc, err := time.LoadLocation(tz); tz != "" && err == nil {
		out += " (" + next.In(loc).Format("15:04:05") + " " + tz + ")"
	}
	return out + ", in " + fmtDur(next.Sub(now).Round(time.Second))
}
