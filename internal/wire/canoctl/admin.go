package canoctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cano-nats/cano/internal/wire/pretty"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/protocol"
)

func breakerCommands() []command {
	return []command{
		{path: "breakers list", short: "list shared circuit breakers", nargs: 0, run: breakersList},
		{path: "breakers show", args: "NAME", short: "show one breaker", nargs: 1, run: breakersShow},
		{path: "breakers reset", args: "NAME", short: "close a breaker and admit calls again", nargs: 1, run: breakersReset},
	}
}

type breakerView struct {
	Name              string     `json:"name"`
	State             string     `json:"state"`
	Failures          int        `json:"failures"`
	OpenUntil         *time.Time `json:"open_until,omitempty"`
	HalfOpenInFlight  int        `json:"half_open_in_flight"`
	HalfOpenSuccesses int        `json:"half_open_successes"`
	Epoch             uint64     `json:"epoch"`
	UpdatedAt         *time.Time `json:"updated_at,omitempty"`
	FailureThreshold  int        `json:"failure_threshold,omitempty"`
	ResetTimeoutMS    int64      `json:"reset_timeout_ms,omitempty"`
	HalfOpenMaxCalls  int        `json:"half_open_max_calls,omitempty"`
}

func viewBreaker(b client.BreakerInfo) breakerView {
	return breakerView{b.Name, string(b.State), b.Failures, timePtr(b.OpenUntil), b.HalfOpenInFlight, b.HalfOpenSuccesses,
		b.Epoch, timePtr(b.UpdatedAt), b.FailureThreshold, b.ResetTimeout.Milliseconds(), b.HalfOpenMaxCalls}
}

func listBreakers(ctx context.Context, e *env) ([]client.BreakerInfo, error) {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	bs, err := e.cl.Breakers(rctx)
	if err != nil {
		return nil, fmt.Errorf("list breakers: %w", err)
	}
	return bs, nil
}

func breakersList(ctx context.Context, e *env, _ []string, _ any) error {
	bs, err := listBreakers(ctx, e)
	if err != nil {
		return err
	}
	now := e.now()
	return printList(e, bs, viewBreaker, "no breakers (a breaker appears once a worker has used it)",
		[]string{"NAME", "STATE", "FAILURES", "OPEN UNTIL", "PROBES", "EPOCH", "UPDATED"},
		func(b client.BreakerInfo) []any {
			return []any{b.Name, b.State, b.Failures, fmtTime(b.OpenUntil, now),
				fmt.Sprintf("%d/%d", b.HalfOpenInFlight, b.HalfOpenSuccesses), b.Epoch, fmtTime(b.UpdatedAt, now)}
		})
}

func breakersShow(ctx context.Context, e *env, args []string, _ any) error {
	bs, err := listBreakers(ctx, e)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.Name != args[0] {
			continue
		}
		if e.c.json {
			return writeJSON(e.out, viewBreaker(b))
		}
		now := e.now()
		t := newTable(e.out)
		t.row("Breaker:", b.Name)
		t.row("State:", b.State)
		t.row("Failures:", b.Failures)
		t.row("Open until:", fmtTime(b.OpenUntil, now))
		t.row("Half-open probes:", fmt.Sprintf("%d in flight, %d succeeded", b.HalfOpenInFlight, b.HalfOpenSuccesses))
		t.row("Epoch:", b.Epoch)
		t.row("Updated:", fmtTime(b.UpdatedAt, now))
		t.row("Policy:", fmt.Sprintf("threshold %s, reset timeout %s, half-open max calls %s",
			orDefault(b.FailureThreshold), durOrDefault(b.ResetTimeout), orDefault(b.HalfOpenMaxCalls)))
		return t.flush()
	}
	return fmt.Errorf("breaker %q not found (list breakers with: canoctl breakers list)", args[0])
}

func orDefault(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

func durOrDefault(d time.Duration) string {
	if d == 0 {
		return "default"
	}
	return d.String()
}

func breakersReset(ctx context.Context, e *env, args []string, _ any) error {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	err := e.cl.ResetBreaker(rctx, args[0])
	if errors.Is(err, client.ErrBreakerNotFound) {
		return fmt.Errorf("breaker %q not found (list breakers with: canoctl breakers list)", args[0])
	}
	if err != nil {
		return fmt.Errorf("reset breaker %s: %w", args[0], err)
	}
	if e.c.json {
		return writeJSON(e.out, map[string]any{"breaker": args[0], "reset": true})
	}
	fmt.Fprintf(e.out, "reset breaker %s: it admits calls again\n", args[0])
	return nil
}

func workerCommands() []command {
	return []command{
		{path: "workers list", short: "list live workers", nargs: 0, run: workersList},
		{path: "workers show", args: "ID", short: "show one live worker", nargs: 1, run: workersShow},
	}
}

type workerView struct {
	ID                  string     `json:"id"`
	Hostname            string     `json:"hostname"`
	PID                 int        `json:"pid"`
	Version             string     `json:"version,omitempty"`
	StartedAt           *time.Time `json:"started_at,omitempty"`
	HeartbeatAt         *time.Time `json:"heartbeat_at,omitempty"`
	HeartbeatIntervalMS int64      `json:"heartbeat_interval_ms"`
	Kinds               []string   `json:"kinds"`
	Queues              []string   `json:"queues"`
	Concurrency         int        `json:"concurrency"`
	InFlight            int        `json:"in_flight"`
	Health              string     `json:"health"`
	HealthReason        string     `json:"health_reason,omitempty"`
	Stopping            bool       `json:"stopping,omitempty"`
}

func viewWorker(w client.WorkerInfo) workerView {
	return workerView{w.ID, w.Hostname, w.PID, w.Version, timePtr(w.StartedAt), timePtr(w.HeartbeatAt),
		w.HeartbeatInterval.Milliseconds(), w.Kinds, w.Queues, w.Concurrency, w.InFlight, string(w.Health), w.HealthReason, w.Stopping}
}

func workerHealth(w client.WorkerInfo) string {
	s := string(w.Health)
	if w.HealthReason != "" {
		s += " (" + w.HealthReason + ")"
	}
	if w.Stopping {
		s += ", stopping"
	}
	return s
}

func workersList(ctx context.Context, e *env, _ []string, _ any) error {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	ws, err := e.cl.Workers(rctx)
	if err != nil {
		return fmt.Errorf("list workers: %w", err)
	}
	now := e.now()
	return printList(e, ws, viewWorker, "no live workers",
		[]string{"ID", "HOST", "PID", "VERSION", "UP", "HEARTBEAT", "IN FLIGHT", "QUEUES", "KINDS", "HEALTH"},
		func(w client.WorkerInfo) []any {
			return []any{w.ID, w.Hostname, w.PID, w.Version, fmtDur(since(w.StartedAt, now).Round(time.Second)),
				fmtDur(since(w.HeartbeatAt, now).Round(time.Millisecond)) + " ago", fmt.Sprintf("%d/%d", w.InFlight, w.Concurrency),
				strings.Join(w.Queues, ","), truncate(strings.Join(w.Kinds, ","), 50), workerHealth(w)}
		})
}

func workersShow(ctx context.Context, e *env, args []string, _ any) error {
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	w, err := e.cl.Worker(rctx, args[0])
	if errors.Is(err, client.ErrWorkerNotFound) {
		return fmt.Errorf("worker %q is not live (list live workers with: canoctl workers list)", args[0])
	}
	if err != nil {
		return fmt.Errorf("read worker %s: %w", args[0], err)
	}
	if e.c.json {
		return writeJSON(e.out, viewWorker(*w))
	}
	now := e.now()
	t := newTable(e.out)
	t.row("Worker:", w.ID)
	t.row("Process:", fmt.Sprintf("%s pid %d", w.Hostname, w.PID))
	t.row("Version:", w.Version)
	t.row("Started:", fmtTime(w.StartedAt, now))
	t.row("Heartbeat:", fmt.Sprintf("%s (every %s)", fmtTime(w.HeartbeatAt, now), w.HeartbeatInterval))
	t.row("In flight:", fmt.Sprintf("%d of %d", w.InFlight, w.Concurrency))
	t.row("Queues:", strings.Join(w.Queues, ", "))
	t.row("Kinds:", strings.Join(w.Kinds, ", "))
	t.row("Health:", workerHealth(*w))
	return t.flush()
}

type dlqListOpts struct {
	source string
	limit  int
}

func dlqCommands() []command {
	seqCmd := func(path, short string) command {
		return command{path: path, args: "SEQ", short: short, nargs: 1}
	}
	list := command{path: "dlq list", short: "list dead letters, newest first", nargs: 0,
		flags: func(fs *flag.FlagSet) any {
			o := &dlqListOpts{}
			fs.StringVar(&o.source, "source", "", "only this `source`: trigger, result, control, timer or task")
			fs.IntVar(&o.limit, "limit", 50, "at most this many (0: all)")
			return o
		}, run: dlqList}
	show := seqCmd("dlq show", "show a dead letter: reason, headers and payload")
	show.run = dlqShow
	// replay and rm act on one dead letter, or on every one (--all) of a
	// source (bulk.go).
	act := func(path, short, verb, past string, op func(e *env) func(context.Context, uint64) error) command {
		return command{path: path, args: "SEQ | --all", short: short, nargs: -2,
			flags: func(fs *flag.FlagSet) any {
				o := &dlqAllOpts{}
				fs.BoolVar(&o.all, "all", false, "instead of one: every dead letter (lists them; --yes "+verb+"s them)")
				fs.StringVar(&o.source, "source", "", "with --all: only this `source`: trigger, result, control, timer or task")
				fs.BoolVar(&o.yes, "yes", false, "with --all: "+verb+" the dead letters listed, rather than only list them")
				return o
			},
			run: func(ctx context.Context, e *env, args []string, o any) error {
				opts, do := o.(*dlqAllOpts), op(e)
				switch {
				case len(args) == 1 && (opts.all || opts.source != "" || opts.yes):
					return usagef("give a SEQ or --all, not both (--source and --yes go with --all)")
				case len(args) == 0 && !opts.all:
					return usagef("give the SEQ of the dead letter to %s (canoctl dlq list shows them), or --all", verb)
				case len(args) == 1:
					return dlqAct(ctx, e, args[0], do, past)
				}
				return dlqAll(ctx, e, opts, bulk{noun: "dead letter", verb: verb, past: past, asJSON: seqNumbers}, do)
			}}
	}
	replay := act("dlq replay", "republish a dead letter to its subject, then delete it (--all: every one)", "replay", "replayed",
		func(e *env) func(context.Context, uint64) error { return e.cl.Replay })
	rm := act("dlq rm", "delete a dead letter (--all: every one)", "delete", "deleted",
		func(e *env) func(context.Context, uint64) error { return e.cl.DeleteDeadLetter })
	return []command{list, show, replay, rm}
}

type deadLetterView struct {
	Seq      uint64            `json:"seq"`
	Source   string            `json:"source"`
	Subject  string            `json:"subject,omitempty"`
	Category string            `json:"category"`
	Reason   string            `json:"reason"`
	Time     *time.Time        `json:"time,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Data     any               `json:"data,omitempty"`
	DataForm string            `json:"data_form,omitempty"`
}

func viewDeadLetter(d client.DeadLetter, withData bool) deadLetterView {
	v := deadLetterView{Seq: d.Seq, Source: d.Source, Subject: d.Subject, Category: d.Category, Reason: d.Reason, Time: timePtr(d.Time)}
	if withData {
		v.Headers = d.Headers
		v.Data, v.DataForm = pretty.Payload(d.Data)
	}
	return v
}

func dlqList(ctx context.Context, e *env, _ []string, o any) error {
	opts := o.(*dlqListOpts)
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	ds, err := e.cl.DeadLetters(rctx, &client.DeadLetterFilter{Source: opts.source, Limit: opts.limit})
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	now := e.now()
	return printList(e, ds, func(d client.DeadLetter) deadLetterView { return viewDeadLetter(d, false) }, "no dead letters",
		[]string{"SEQ", "TIME", "SOURCE", "CATEGORY", "SUBJECT", "REASON"},
		func(d client.DeadLetter) []any {
			return []any{d.Seq, fmtTime(d.Time, now), d.Source, d.Category, d.Subject, truncate(oneLine(d.Reason), 80)}
		})
}

func parseSeq(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, usagef("%q is not a dead-letter sequence: give the SEQ column of canoctl dlq list", s)
	}
	return n, nil
}

func dlqShow(ctx context.Context, e *env, args []string, _ any) error {
	seq, err := parseSeq(args[0])
	if err != nil {
		return err
	}
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	ds, err := e.cl.DeadLetters(rctx, nil)
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	for _, d := range ds {
		if d.Seq != seq {
			continue
		}
		v := viewDeadLetter(d, true)
		if e.c.json {
			return writeJSON(e.out, v)
		}
		t := newTable(e.out)
		t.row("Seq:", d.Seq)
		t.row("Time:", fmtTime(d.Time, e.now()))
		t.row("Source:", d.Source)
		t.row("Subject:", d.Subject)
		t.row("Category:", d.Category)
		t.row("Reason:", oneLine(d.Reason))
		keys, hidden := shownHeaders(d.Headers)
		for _, k := range keys {
			t.row("Header "+k+":", d.Headers[k])
		}
		if hidden > 0 {
			t.row("Engine headers:", fmt.Sprintf("%d left out (--json shows every header)", hidden))
		}
		_ = t.flush()
		if v.Data != nil {
			var s string
			switch x := v.Data.(type) {
			case json.RawMessage:
				s = string(x)
			default:
				s = fmt.Sprintf("%q", x)
			}
			fmt.Fprintf(e.out, "\nPayload (%s, %d bytes):\n%s\n", v.DataForm, len(d.Data), s)
		}
		return nil
	}
	return fmt.Errorf("no dead letter at sequence %d (list them with: canoctl dlq list)", seq)
}

// engineHeaders are the engine's own headers a refused message may carry:
// how it was sent and is to be answered, nothing that says what it asked
// for or why it was refused. dlq show leaves them out of its text; --json
// keeps them.
var engineHeaders = []string{protocol.HeaderReplyTo, protocol.HeaderNewRunID, protocol.HeaderCoordinator, protocol.HeaderResent}

// shownHeaders returns the keys of h that dlq show prints, sorted, and how
// many engine headers it left out.
func shownHeaders(h map[string]string) (keys []string, hidden int) {
	for k := range h {
		if slices.ContainsFunc(engineHeaders, func(e string) bool { return strings.EqualFold(k, e) }) {
			hidden++
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, hidden
}

type dlqAllOpts struct {
	all    bool
	source string
	yes    bool
}

// dlqAll does to every dead letter (of opts.source, if set) what b names;
// without opts.yes it only lists them.
func dlqAll(ctx context.Context, e *env, opts *dlqAllOpts, b bulk, do func(context.Context, uint64) error) error {
	rctx, cancel := e.reqCtx(ctx)
	ds, err := e.cl.DeadLetters(rctx, &client.DeadLetterFilter{Source: opts.source})
	cancel()
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	b.what = "dead letters"
	if opts.source != "" {
		b.what += " of source " + opts.source
	}
	b.header = []string{"SEQ", "TIME", "SOURCE", "REASON"}
	now := e.now()
	for _, d := range ds {
		b.add(strconv.FormatUint(d.Seq, 10), d.Seq, fmtTime(d.Time, now), d.Source, truncate(oneLine(d.Reason), 60))
	}
	if !opts.yes {
		return b.preview(e, nil)
	}
	done, failed := b.do(ctx, e, func(ctx context.Context, id string) error {
		seq, _ := strconv.ParseUint(id, 10, 64) // formatted above
		return do(ctx, seq)
	})
	if e.c.json {
		if err := writeJSON(e.out, map[string]any{b.past: b.jsonIDs(done)}); err != nil {
			return err
		}
	} else if len(b.ids) == 0 {
		fmt.Fprintf(e.out, "no %s to %s\n", b.what, b.verb)
	} else if len(done) > 0 {
		fmt.Fprintf(e.out, "%s %s%s\n", b.past, counted(len(done), b.noun), replayNote(b.past))
	}
	return errors.Join(failed...)
}

// seqNumbers shows dead-letter sequences in JSON as numbers, as dlq list
// does.
func seqNumbers(ids []string) any {
	seqs := make([]uint64, 0, len(ids))
	for _, id := range ids {
		seq, _ := strconv.ParseUint(id, 10, 64) // formatted from a sequence
		seqs = append(seqs, seq)
	}
	return seqs
}

func dlqAct(ctx context.Context, e *env, arg string, do func(context.Context, uint64) error, done string) error {
	seq, err := parseSeq(arg)
	if err != nil {
		return err
	}
	rctx, cancel := e.reqCtx(ctx)
	defer cancel()
	err = do(rctx, seq)
	if errors.Is(err, client.ErrDeadLetterNotFound) {
		return fmt.Errorf("no dead letter at sequence %d (list them with: canoctl dlq list)", seq)
	}
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", seq, err)
	}
	if e.c.json {
		return writeJSON(e.out, map[string]any{"seq": seq, done: true})
	}
	fmt.Fprintf(e.out, "%s dead letter %d%s\n", done, seq, replayNote(done))
	return nil
}

// replayNote is what a replay's line adds: the replayed message is taken
// again, and refused again if what refused it is still wrong.
func replayNote(done string) string {
	if done != "replayed" {
		return ""
	}
	return " (if it is refused again, it comes back as a new dead letter: canoctl dlq list)"
}
