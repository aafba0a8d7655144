package canoctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cano-nats/cano/internal/wire/pretty"
	"github.com/cano-nats/cano/pkg/client"
)

type wfShowOpts struct {
	version string
	mermaid bool
	runs    int
}

type wfRmOpts struct {
	version string
	latest  bool
	inUse   bool
}

func workflowCommands() []command {
	return []command{
		{path: "workflows list", short: "list registered workflows at their latest version", nargs: 0, run: workflowsList},
		{path: "workflows show", args: "NAME", short: "show a workflow's states (--mermaid: a stateDiagram-v2)", nargs: 1,
			flags: func(fs *flag.FlagSet) any {
				o := &wfShowOpts{}
				fs.StringVar(&o.version, "version", "", "`version` to show (default: the latest)")
				fs.BoolVar(&o.mermaid, "mermaid", false, "print a Mermaid stateDiagram-v2")
				fs.IntVar(&o.runs, "runs", 20, "with --mermaid, draw the transitions out of task states taken by the last `N` runs (0: none; reads the runs bucket)")
				return o
			}, run: workflowsShow},
		{path: "workflows rm", args: "NAME", short: "delete one registered version of a workflow", nargs: 1,
			flags: func(fs *flag.FlagSet) any {
				o := &wfRmOpts{}
				fs.StringVar(&o.version, "version", "", "`version` to delete (required)")
				fs.BoolVar(&o.latest, "allow-latest", false, "allow deleting the latest version")
				fs.BoolVar(&o.inUse, "allow-in-use", false, "allow deleting a version running or scheduled runs use (they wait for it until it is registered again, or are cancelled)")
				return o
			}, run: workflowsRm},
		{path: "workflows promote", args: "NAME VERSION", short: "make a registered version the latest: the one new runs use (a rollback)",
			nargs: 2, run: workflowsPromote},
	}
}

type workflowView struct {
	Name           string          `json:"name"`
	Version        string          `json:"version"`
	Latest         string          `json:"latest"`
	Versions       []wfVersionView `json:"versions"`
	Initial        string          `json:"initial,omitempty"`
	States         []stateView     `json:"states,omitempty"`
	Queue          string          `json:"queue,omitempty"`
	TotalTimeoutMS int64           `json:"total_timeout_ms,omitempty"`
	MaxTransitions int             `json:"max_transitions,omitempty"`
}

type wfVersionView struct {
	Version    string     `json:"version"`
	Registered *time.Time `json:"registered,omitempty"`
}

type stateView struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Task     string    `json:"task,omitempty"`
	Branches []string  `json:"branches,omitempty"`
	Join     *joinView `json:"join,omitempty"`
	Next     []string  `json:"next,omitempty"`
	// OnFailure is where the state's failures go (fsm.Workflow.OnFailure).
	OnFailure string `json:"on_failure,omitempty"`
	// Params and Policy are a task state's; BranchParams and
	// BranchPolicies a split's, in branch order.
	Params         any           `json:"params,omitempty"`
	Policy         *policyView   `json:"policy,omitempty"`
	BranchParams   []any         `json:"branch_params,omitempty"`
	BranchPolicies []*policyView `json:"branch_policies,omitempty"`
}

type policyView struct {
	Retry            string  `json:"retry"`
	MaxRetries       int     `json:"max_retries,omitempty"`
	DelayMS          int64   `json:"delay_ms,omitempty"`
	Multiplier       float64 `json:"multiplier,omitempty"`
	MaxDelayMS       int64   `json:"max_delay_ms,omitempty"`
	Jitter           float64 `json:"jitter,omitempty"`
	AttemptTimeoutMS int64   `json:"attempt_timeout_ms,omitempty"`
	Breaker          string  `json:"breaker,omitempty"`
}

func viewPolicy(p *client.TaskPolicy) *policyView {
	if p == nil {
		return nil
	}
	return &policyView{p.Retry, p.MaxRetries, p.Delay.Milliseconds(), p.Multiplier, p.MaxDelay.Milliseconds(), p.Jitter,
		p.AttemptTimeout.Milliseconds(), p.Breaker}
}

// paramsValue is a task's parameters as JSON shows them (nil: none).
func paramsValue(b []byte) any {
	v, _ := pretty.Payload(b)
	return v
}

type joinView struct {
	Strategy   string  `json:"strategy"`
	N          int     `json:"n,omitempty"`
	Percentage float64 `json:"percentage,omitempty"`
	State      string  `json:"state"`
	TimeoutMS  int64   `json:"timeout_ms,omitempty"`
	Bulkhead   int     `json:"bulkhead,omitempty"`
}

func viewWorkflow(w *client.WorkflowInfo) workflowView {
	v := workflowView{Name: w.Name, Version: w.Version, Latest: w.Latest, Initial: w.Initial,
		Queue: w.Queue, TotalTimeoutMS: w.TotalTimeout.Milliseconds(), MaxTransitions: w.MaxTransitions}
	for _, s := range w.States {
		sv := stateView{Name: s.Name, Kind: string(s.Kind), Task: s.Task, Branches: s.Branches, Next: s.Next, OnFailure: s.OnFailure,
			Params: paramsValue(s.Params), Policy: viewPolicy(s.Policy)}
		for _, b := range s.BranchParams {
			sv.BranchParams = append(sv.BranchParams, paramsValue(b))
		}
		for _, p := range s.BranchPolicies {
			sv.BranchPolicies = append(sv.BranchPolicies, viewPolicy(p))
		}
		if j := s.Join; j != nil {
			sv.Join = &joinView{j.Strategy, j.N, j.Percentage, j.State, j.Timeout.Milliseconds(), j.Bulkhead}
		}
		v.States = append(v.States, sv)
	}
	for _, x := range w.Versions {
		v.Versions = append(v.Versions, wfVersionView{x.Version, timePtr(x.Registered)})
	}
	return v
}

func workflowsList(ctx context.Context, e *env, _ []string, _ any) error {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	wfs, err := e.cl.Workflows(rctx)
	if err != nil {
		return fmt.Errorf("list workflows: %w", err)
	}
	return printList(e, wfs, func(w client.WorkflowInfo) workflowView { return viewWorkflow(&w) },
		"no workflows registered (a worker registers its workflows when it starts)",
		[]string{"NAME", "LATEST", "VERSIONS", "INITIAL", "STATES", "QUEUE"},
		func(w client.WorkflowInfo) []any {
			return []any{w.Name, w.Latest, len(w.Versions), w.Initial, len(w.States), w.Queue}
		})
}

// workflowNotFound is the error for a workflow no worker has registered,
// naming the registered one closest to name when one is close.
func workflowNotFound(ctx context.Context, e *env, name string) error {
	near := closest(name, workflowNames(ctx, e)) // suggest.go, runs.go
	return fmt.Errorf("workflow %q not found: no worker has registered it %s", name, listWorkflowsHint(near))
}

func getWorkflow(ctx context.Context, e *env, name, version string) (*client.WorkflowInfo, error) {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	w, err := e.cl.Workflow(rctx, name, version)
	if errors.Is(err, client.ErrWorkflowNotFound) {
		if version != "" {
			return nil, fmt.Errorf("workflow %q has no version %q (list its versions with: canoctl workflows show %s)", name, version, name)
		}
		return nil, workflowNotFound(ctx, e, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read workflow %s: %w", name, err)
	}
	return w, nil
}

func workflowsShow(ctx context.Context, e *env, args []string, o any) error {
	opts := o.(*wfShowOpts)
	w, err := getWorkflow(ctx, e, args[0], opts.version)
	if err != nil {
		return err
	}
	if opts.mermaid {
		var paths [][]string
		read := 0
		if opts.runs > 0 {
			rctx, cancel := e.reqCtx(ctx)
			runs, err := e.cl.List(rctx, &client.ListOpts{Workflow: w.Name})
			cancel()
			if err != nil {
				return fmt.Errorf("read runs of %s: %w", w.Name, err)
			}
			for _, r := range runs {
				if r.Version == w.Version && read < opts.runs {
					paths = append(paths, r.Path)
					read++
				}
			}
		}
		fmt.Fprint(e.out, mermaidDiagram(w, seenEdges(paths), read))
		return nil
	}
	if e.c.json {
		return writeJSON(e.out, viewWorkflow(w))
	}
	now := e.now()
	kv := newTable(e.out)
	kv.row("Workflow:", w.Name)
	kv.row("Version:", w.Version)
	kv.row("Latest:", w.Latest)
	var vs []string
	for _, v := range w.Versions {
		vs = append(vs, v.Version+" ("+fmtTime(v.Registered, now)+")")
	}
	kv.row("Versions:", strings.Join(vs, ", "))
	kv.row("Initial:", w.Initial)
	kv.row("Queue:", w.Queue)
	if w.TotalTimeout > 0 {
		kv.row("Total timeout:", w.TotalTimeout)
	}
	if w.MaxTransitions > 0 {
		kv.row("Max transitions:", w.MaxTransitions)
	}
	_ = kv.flush()
	fmt.Fprintln(e.out)
	t := newTable(e.out, "STATE", "KIND", "TASK / BRANCHES", "ATTEMPTS", "JOIN", "NEXT")
	for _, s := range w.States {
		task, attempts := pretty.StateTasks(s), pretty.StateAttempts(s)
		join := ""
		if s.Join != nil {
			join = joinLabel(s.Join)
			if s.Join.Bulkhead > 0 {
				join += fmt.Sprintf(", bulkhead %d", s.Join.Bulkhead)
			}
		}
		next := strings.Join(s.Next, ", ")
		if s.Kind == client.StateTask {
			next = "(chosen by the task)"
		}
		if s.OnFailure != "" {
			next += "; on failure " + s.OnFailure
		}
		t.row(s.Name, s.Kind, task, attempts, join, next)
	}
	return t.flush()
}

func workflowsRm(ctx context.Context, e *env, args []string, o any) error {
	opts := o.(*wfRmOpts)
	if opts.version == "" {
		return usagef("workflows rm needs --version (see the versions with: canoctl workflows show %s)", args[0])
	}
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	err := e.cl.DeleteWorkflowVersion(rctx, args[0], opts.version, &client.DeleteWorkflowVersionOpts{AllowLatest: opts.latest, AllowInUse: opts.inUse})
	var inUse *client.VersionInUseError
	switch {
	case errors.As(err, &inUse):
		some := strings.Join(inUse.Runs[:min(len(inUse.Runs), 5)], " ")
		if len(inUse.Runs) > 5 {
			some += " …"
		}
		return fmt.Errorf("version %s of %s is in use by %d running or scheduled runs (%s), which could not move on without it: "+
			"wait for them to end or cancel them (canoctl runs list --workflow %s), or pass --allow-in-use to delete it anyway",
			opts.version, args[0], len(inUse.Runs), some, args[0])
	case errors.Is(err, client.ErrWorkflowNotFound):
		return fmt.Errorf("workflow %q has no version %q (list its versions with: canoctl workflows show %s)", args[0], opts.version, args[0])
	case errors.Is(err, client.ErrLatestVersion):
		return fmt.Errorf("version %s is the latest version of %s, which triggers run by default: pass --allow-latest to delete it anyway", opts.version, args[0])
	case err != nil:
		return fmt.Errorf("delete workflow %s version %s: %w", args[0], opts.version, err)
	}
	if e.c.json {
		return writeJSON(e.out, map[string]any{"workflow": args[0], "version": opts.version, "deleted": true})
	}
	fmt.Fprintf(e.out, "deleted version %s of workflow %s\n", opts.version, args[0])
	return nil
}

func workflowsPromote(ctx context.Context, e *env, args []string, _ any) error {
	name, version := args[0], args[1]
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	err := e.cl.PromoteWorkflowVersion(rctx, name, version)
	switch {
	case errors.Is(err, client.ErrWorkflowNotFound):
		w, werr := e.cl.Workflow(rctx, name, "")
		if werr != nil {
			return workflowNotFound(ctx, e, name)
		}
		var vs []string
		for _, v := range w.Versions {
			vs = append(vs, v.Version)
		}
		return fmt.Errorf("workflow %q has no version %q (registered: %s)", name, version, strings.Join(vs, ", "))
	case err != nil:
		return fmt.Errorf("promote workflow %s version %s: %w", name, version, err)
	}
	if e.c.json {
		return writeJSON(e.out, map[string]any{"workflow": name, "latest": version})
	}
	fmt.Fprintf(e.out, "version %s is now the latest version of workflow %s: new runs use it "+
		"(a worker registering a version newer than it moves latest again)\n", version, name)
	return nil
}
