package canoctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cano-nats/cano/internal/wire/pretty"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
)

// TailDefault is how long trigger --wait keeps reading events after the
// run has ended, for the run's events still on their way (events are
// published fire-and-forget, so one may never come).
const TailDefault = 2 * time.Second

type triggerOpts struct {
	input, state, key, version, id, at, in string
	wait                                   bool
}

func triggerCommands() []command {
	return []command{{path: "trigger", args: "WORKFLOW", short: "start a run (--wait: follow it to its end)", nargs: 1, long: true,
		flags: func(fs *flag.FlagSet) any {
			o := &triggerOpts{}
			fs.StringVar(&o.input, "input", "", "run input: `JSON`, or @file to read it from a file")
			fs.StringVar(&o.state, "state", "", "initial `state` instead of the workflow's")
			fs.StringVar(&o.key, "key", "", "idempotency `key`: a second trigger with it starts nothing and returns the first run")
			fs.StringVar(&o.version, "version", "", "workflow `version` to run (default: the latest)")
			fs.StringVar(&o.id, "id", "", "run `id` (default: a fresh unique id)")
			fs.StringVar(&o.at, "at", "", "start the run at `TIME` (RFC 3339: 2026-12-24T18:00:00Z); it is scheduled until then")
			fs.StringVar(&o.in, "in", "", "start the run after `DURATION` (90s, 2h30m, 48h); it is scheduled until then")
			fs.BoolVar(&o.wait, "wait", false, followHelp)
			return o
		}, run: trigger}}
}

// parseInput reads --input: JSON text or @file. Whole JSON numbers become
// int64 so tasks can decode them into integers (wirecodec.ParseJSON).
func parseInput(s string) (any, error) {
	b, src, err := readInput(s)
	if b == nil || err != nil {
		return nil, err
	}
	return parseJSONInput(b, src)
}

// jsonInput reads --input as parseInput does, for a trigger: the JSON is
// sent as JSON, so tasks decode it with encoding/json, as they do a
// trigger sent by `nats req`.
func jsonInput(s string) (json.RawMessage, error) {
	b, src, err := readInput(s)
	if b == nil || err != nil {
		return nil, err
	}
	if _, err := parseJSONInput(b, src); err != nil {
		return nil, err
	}
	return b, nil
}

func parseJSONInput(b []byte, src string) (any, error) {
	v, err := wirecodec.ParseJSON(b)
	if err != nil {
		return nil, usagef("%s %v (quote it for the shell: --input '{\"n\": 1}')", src, err)
	}
	return v, nil
}

// readInput returns --input's bytes (nil for none) and how to name them.
func readInput(s string) ([]byte, string, error) {
	if s == "" {
		return nil, "", nil
	}
	if !strings.HasPrefix(s, "@") {
		return []byte(s), "--input", nil
	}
	b, err := os.ReadFile(s[1:])
	if err != nil {
		return nil, "", usagef("cannot read --input file: %v", err)
	}
	return b, "--input file " + s[1:], nil
}

// startAt is the start time --at or --in asks for (zero for none). It is
// a pure function.
func startAt(at, in string, now time.Time) (time.Time, error) {
	var t time.Time
	switch {
	case at != "" && in != "":
		return t, usagef("--at and --in both say when to start: give one of them")
	case in != "":
		d, err := time.ParseDuration(in)
		if err != nil {
			return t, usagef("--in %q is not a duration: write it as 90s, 2h30m or 48h (hours at most: no d)", in)
		}
		if d < 0 {
			return t, usagef("--in %s is negative: give how long from now, such as --in 90s", in)
		}
		t = now.Add(d)
	case at != "":
		var err error
		if t, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return t, usagef("--at %q is not an RFC 3339 time: write it as 2026-12-24T18:00:00Z or 2026-12-24T19:00:00+01:00", at)
		}
	default:
		return t, nil
	}
	if _, err := wirecodec.StartTime(t); err != nil {
		return time.Time{}, usagef("--at/--in %v", err)
	}
	return t, nil
}

// outcomeView is trigger --wait's last JSON line.
type outcomeView struct {
	Outcome string  `json:"outcome"`
	Run     runView `json:"run"`
}

func trigger(ctx context.Context, e *env, args []string, o any) error {
	opts := o.(*triggerOpts)
	input, err := jsonInput(opts.input)
	if err != nil {
		return err
	}
	wf := args[0]
	topts := &client.TriggerOpts{InitialState: opts.state, IdempotencyKey: opts.key, DefVersion: opts.version, RunID: opts.id,
		ErrorIfExists: true} // said, not refused: below
	if topts.StartAt, err = startAt(opts.at, opts.in, e.now()); err != nil {
		return err
	}
	if input != nil {
		topts.Input = input
	}
	st, stop, err := watchFirst(ctx, e, opts.wait, &client.EventFilter{Workflow: wf}, wf) // runs.go
	if err != nil {
		return err
	}
	defer stop()
	tctx, cancel := e.reqCtx(ctx)
	id, err := e.cl.Trigger(tctx, wf, topts)
	cancel()
	existing := errors.Is(err, client.ErrRunExists)
	if err != nil && !existing {
		return fmt.Errorf("trigger %s: %w%s", wf, err, refusedHint(ctx, e, err, wf, opts.version))
	}
	if !opts.wait {
		if e.c.json {
			return writeJSON(e.out, map[string]any{"run_id": id, "workflow": wf, "existing": existing})
		}
		if existing {
			what := "run id " + id
			if opts.key != "" {
				what = "idempotency key " + opts.key
			}
			fmt.Fprintf(e.out, "nothing started: run %s of %s already has the %s (see it with: canoctl runs show %s)\n", id, wf, what, id)
			return nil
		}
		if topts.StartAt.After(e.now()) {
			fmt.Fprintf(e.out, "scheduled run %s of %s to start at %s (cancel it before then with: canoctl runs cancel %s)\n",
				id, wf, topts.StartAt.Format(time.RFC3339), id)
			return nil
		}
		fmt.Fprintf(e.out, "started run %s of %s (follow it with: canoctl runs watch %s)\n", id, wf, id)
		return nil
	}
	if !e.c.json {
		if existing {
			fmt.Fprintf(e.out, "run %s of %s (it already existed: nothing started)\n", id, wf)
		} else {
			fmt.Fprintf(e.out, "run %s of %s\n", id, wf)
		}
	}
	return follow(ctx, e, st, id)
}

// refusedHint says what to do about a trigger refused as misconfigured
// (err matches fsm.ErrConfiguration) when the refusal is the workflow, or
// its version, that no worker has registered: " (…)" to append to the
// error, "" for another refusal or when canoctl cannot tell.
func refusedHint(ctx context.Context, e *env, err error, wf, version string) string {
	if !errors.Is(err, fsm.ErrConfiguration) {
		return ""
	}
	near, unknown := unregistered(ctx, e, wf) // runs.go
	if !unknown {
		if version == "" {
			return ""
		}
		rctx, cancel := e.reqCtx(ctx)
		_, werr := e.cl.Workflow(rctx, wf, version)
		cancel()
		if errors.Is(werr, client.ErrWorkflowNotFound) {
			return " (list its versions with: canoctl workflows show " + wf + ")"
		}
		return ""
	}
	return " " + listWorkflowsHint(near)
}

// listWorkflowsHint is "(did you mean NEAR? list workflows with: canoctl
// workflows list)", without the question when near is "".
func listWorkflowsHint(near string) string {
	mean := ""
	if near != "" {
		mean = "did you mean " + near + "? "
	}
	return "(" + mean + "list workflows with: canoctl workflows list)"
}

// follow prints run id's events until its terminal event, then the
// outcome. Await runs alongside, so a run that ended before the watch
// (an idempotent trigger of an ended run) or whose terminal event was lost
// still ends the wait.
func follow(ctx context.Context, e *env, st *client.EventStream, id string) error {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	evs, awaited := watchEnd(sctx, e, st, id)
	var tail <-chan time.Time
	awaitDone, sawEnd := false, false
	quiet := time.NewTimer(QuietHintAfter)
	defer quiet.Stop()
loop:
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
					return fmt.Errorf("stopped waiting for run %s: %w (it goes on; see canoctl runs show %s)", id, ctx.Err(), id)
				}
				if awaitDone {
					break loop
				}
				return fmt.Errorf("watch run %s: %w", id, n.err)
			}
			if n.ev.RunID != id {
				continue
			}
			printEvent(e, n.ev, false)
			if n.ev.Type.Terminal() || n.ev.Type == client.EventRejected {
				sawEnd = n.ev.Type.Terminal()
				break loop
			}
		case a := <-awaited:
			awaitDone = true
			if a.err != nil && ctx.Err() != nil {
				return fmt.Errorf("stopped waiting for run %s: %w (it goes on; see canoctl runs show %s)", id, ctx.Err(), id)
			}
			tail = time.After(TailDefault)
		case <-tail:
			break loop
		}
	}
	stop()
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	r, err := e.cl.Get(rctx, id)
	// The run's end was announced, but a read answered by a replica that
	// lags (a cluster's follower applies the record's last write a moment
	// after its leader) can still show it running: read again until the
	// record shows the end, within the request timeout.
	for wait := 10 * time.Millisecond; sawEnd && err == nil && !r.Status.Terminal(); wait = min(2*wait, 500*time.Millisecond) {
		select {
		case <-rctx.Done():
		case <-time.After(wait):
		}
		if rctx.Err() != nil {
			break
		}
		r, err = e.cl.Get(rctx, id)
	}
	if err != nil {
		return fmt.Errorf("read run %s: %w", id, err)
	}
	return printOutcome(e, r)
}

// printOutcome prints how a run ended and returns an error unless it
// completed.
func printOutcome(e *env, r *client.Run) error {
	now := e.now()
	if e.c.json {
		if err := writeJSONLine(e.out, outcomeView{Outcome: string(r.Status), Run: viewRun(r, now, true)}); err != nil {
			return err
		}
	} else if r.Status == client.RunCompleted {
		fmt.Fprintf(e.out, "completed in %s after %s: %s\n", r.State, fmtDur(runDuration(r, now)), strings.Join(r.Path, " → "))
		if out := pretty.Decoded(r.Output); out != nil {
			fmt.Fprintln(e.out, "output:", jsonText(out))
		}
	}
	switch r.Status {
	case client.RunCompleted:
		return nil
	case client.RunRunning:
		return fmt.Errorf("run %s is still running in state %s (see canoctl runs show %s)", r.ID, r.State, r.ID)
	case client.RunScheduled:
		return fmt.Errorf("run %s is scheduled to start at %s (see canoctl runs show %s)", r.ID, r.StartAt.Format(time.RFC3339), r.ID)
	default:
		ev := viewError(r.Err)
		msg := fmt.Sprintf("run %s %s in state %s", r.ID, r.Status, r.State)
		if ev != nil {
			msg += ": " + ev.Message
		}
		return errors.New(msg + " (details: canoctl runs show " + r.ID + ")")
	}
}

// QuietHintAfter is how long a follow waits without an event of its run
// before it checks that a live worker serves the run's current state (a
// variable for tests).
var QuietHintAfter = 5 * time.Second

// unservedHint says, for a run that has stopped moving, which task kinds of
// its current state no live worker serves, and what to do; "" when every
// kind is served or it cannot tell.
func unservedHint(ctx context.Context, e *env, id string) string {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	r, err := e.cl.Get(rctx, id)
	if err != nil || r.Status != client.RunRunning {
		return "" // ended, or scheduled: waiting for its start, not for a worker
	}
	wf, err := e.cl.Workflow(rctx, r.Workflow, r.Version)
	if err != nil {
		return ""
	}
	ws, err := e.cl.Workers(rctx)
	if err != nil {
		return ""
	}
	for _, st := range wf.States {
		if st.Name != r.State {
			continue
		}
		if kinds := unserved(st, ws); len(kinds) > 0 {
			return fmt.Sprintf("run %s waits in state %q for task kind %s, which no live worker serves: "+
				"start a worker that registers it (canoctl workers list shows who serves what); the run goes on when one does",
				id, r.State, strings.Join(quoteAll(kinds), ", "))
		}
	}
	return ""
}

// unserved returns the task kinds state runs that none of workers serves,
// in the state's order. It is a pure function.
func unserved(state client.StateInfo, workers []client.WorkerInfo) []string {
	served := map[string]bool{}
	for _, w := range workers {
		for _, k := range w.Kinds {
			served[k] = true
		}
	}
	var missing []string
	seen := map[string]bool{}
	for _, k := range append([]string{state.Task}, state.Branches...) {
		if k != "" && !served[k] && !seen[k] {
			seen[k] = true
			missing = append(missing, k)
		}
	}
	return missing
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
