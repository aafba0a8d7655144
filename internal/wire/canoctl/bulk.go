package canoctl

import (
	"context"
	"fmt"
	"maps"
)

// Acting on many things at once (runs cancel --workflow, runs start
// --workflow, dlq replay --all, dlq rm --all). Without --yes canoctl lists what it would act on and
// changes nothing; with --yes it acts on each, goes on past a failure, and
// reports the failures together.

// bulk is one such action over ids.
type bulk struct {
	what string // what is acted on, plural, for "no … to …": "scheduled runs of echo"
	noun string // one of them: "run", "dead letter"
	verb string // "cancel", "replay", "delete"
	past string // "cancelled", "replayed", "deleted"
	ids  []string
	// asJSON shows ids in JSON output; nil shows them as strings.
	asJSON func(ids []string) any
	// header and rows (one per id, by add) are the table preview shows;
	// without them it shows one id a line.
	header []string
	rows   [][]any
}

// add appends id, with its row of the preview's table.
func (b *bulk) add(id string, row ...any) {
	b.ids = append(b.ids, id)
	b.rows = append(b.rows, row)
}

// jsonIDs is ids as --json shows them.
func (b bulk) jsonIDs(ids []string) any {
	if b.asJSON != nil {
		return b.asJSON(ids)
	}
	return nonNil(ids)
}

// preview prints what --yes would act on: a table of them (one id a line
// without a header) and how many, or, with --json, {"would_<verb>": [...]}
// plus extra.
func (b bulk) preview(e *env, extra map[string]any) error {
	if e.c.json {
		v := map[string]any{"would_" + b.verb: b.jsonIDs(b.ids)}
		maps.Copy(v, extra)
		return writeJSON(e.out, v)
	}
	if len(b.ids) == 0 {
		fmt.Fprintf(e.out, "no %s to %s\n", b.what, b.verb)
		return nil
	}
	if b.header != nil && len(b.rows) == len(b.ids) {
		t := newTable(e.out, b.header...)
		for _, r := range b.rows {
			t.row(r...)
		}
		if err := t.flush(); err != nil {
			return err
		}
	} else {
		for _, id := range b.ids {
			fmt.Fprintln(e.out, id)
		}
	}
	fmt.Fprintf(e.out, "%s would be %s: run again with --yes to %s them\n", counted(len(b.ids), b.noun), b.past, b.verb)
	return nil
}

// do acts on each id, each within one request's timeout; it returns the
// ids it acted on and the failures.
func (b bulk) do(ctx context.Context, e *env, act func(ctx context.Context, id string) error) (done []string, failed []error) {
	for _, id := range b.ids {
		rctx, cancel := e.reqCtx(ctx)
		err := act(rctx, id)
		cancel()
		if err != nil {
			failed = append(failed, fmt.Errorf("%s %s %s: %w", b.verb, b.noun, id, err))
			continue
		}
		done = append(done, id)
	}
	return done, failed
}

// requestedRuns prints what do requested of a workflow's runs, or that
// there was nothing to act on; failures are the caller's to return.
func (b bulk) requestedRuns(e *env, workflow string, requested []string, failed []error) {
	switch {
	case len(requested) == 0 && len(failed) == 0:
		fmt.Fprintf(e.out, "no %s to %s\n", b.what, b.verb)
	case len(requested) > 0:
		fmt.Fprintf(e.out, "%s requested for %s of %s (follow them with: canoctl runs watch --workflow %s)\n",
			b.verb, counted(len(requested), "run"), workflow, workflow)
	}
}

// nonNil is s, or an empty slice for nil: JSON shows [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
