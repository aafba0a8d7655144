package client

import (
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// This file is the pure part of [RunIndex]: a set of run summaries kept in
// creation order per workflow and status, so that a page of runs is cut by
// position and counted by binary search, in time proportional to the page.

// RunSummaryErrorMax is how many bytes of a run's error message a
// [RunSummary] keeps; a longer message is cut on a character boundary and
// ends with "…".
const RunSummaryErrorMax = 200

// RunSummary is the part of a run a list of runs shows, as [RunIndex]
// holds it. Times are in the local time zone; a zero time.Time means "not
// set".
type RunSummary struct {
	// ID is the run id.
	ID string
	// Workflow is the workflow's name and Version the definition version.
	Workflow string
	Version  string
	// Status is where the run is in its lifecycle; State its current (or
	// final) state.
	Status RunStatus
	State  string
	// CreatedAt is when the run was triggered (for a run that starts later,
	// see its Run.StartAt), UpdatedAt when its record last
	// changed, EndedAt when it ended (zero while running).
	CreatedAt time.Time
	UpdatedAt time.Time
	EndedAt   time.Time
	// StartAt is when a run triggered to start later
	// ([TriggerOpts].StartAt) starts, or started; zero for a run started at
	// once.
	StartAt time.Time
	// Error is the run's error message, at most RunSummaryErrorMax bytes;
	// "" if none.
	Error string
}

// runEntry is one run in a runSet: strings shared between runs (workflow,
// version, state) are interned, times are unix nanoseconds.
type runEntry struct {
	id, workflow, version, state, err string
	status                            RunStatus
	created, updated, start           int64
}

func (e *runEntry) summary() RunSummary {
	s := RunSummary{ID: e.id, Workflow: e.workflow, Version: e.version, Status: e.status, State: e.state,
		CreatedAt: timeOf(e.created), UpdatedAt: timeOf(e.updated), StartAt: timeOf(e.start), Error: e.err}
	if e.status.Terminal() {
		s.EndedAt = s.UpdatedAt
	}
	return s
}

// before orders entries by creation time, then id.
func (e *runEntry) before(o *runEntry) bool {
	if e.created != o.created {
		return e.created < o.created
	}
	return e.id < o.id
}

// runList is a list of entries, oldest first.
type runList []*runEntry

// pos is the index where e is, or would be inserted.
func (l runList) pos(e *runEntry) int {
	return sort.Search(len(l), func(i int) bool { return !l[i].before(e) })
}

// since is the index of the first entry created at or after t (unix ns).
func (l runList) since(t int64) int {
	return sort.Search(len(l), func(i int) bool { return l[i].created >= t })
}

func (l *runList) insert(e *runEntry) {
	s := *l
	if len(s) == 0 || s[len(s)-1].before(e) {
		*l = append(s, e) // the common case: the newest run
		return
	}
	*l = slices.Insert(s, s.pos(e), e)
}

// remove takes e out, moving the shorter side of the list: removing near
// either end (a finished recent run, an expired old one) is cheap.
func (l *runList) remove(e *runEntry) {
	s := *l
	i := s.pos(e)
	for i < len(s) && s[i] != e && !e.before(s[i]) {
		i++ // same creation time and id cannot happen twice; defensive
	}
	if i >= len(s) || s[i] != e {
		return
	}
	if i < len(s)/2 {
		copy(s[1:i+1], s[:i])
		s[0] = nil
		*l = s[1:]
		return
	}
	*l = slices.Delete(s, i, i+1)
}

// listKey names one ordered list: every run (zero key), a workflow's, a
// status's, or a workflow's in one status.
type listKey struct {
	workflow string
	status   RunStatus
}

// runSet holds run summaries, at most max (the newest by creation time).
// It is not safe for concurrent use; RunIndex locks around it.
type runSet struct {
	max     int
	byID    map[string]*runEntry
	lists   map[listKey]*runList
	strs    map[string]string // interned workflow, version and state names
	dropped uint64            // runs dropped to stay within max
	horizon int64             // created time of the newest dropped run; 0 if none
}

func newRunSet(max int) *runSet {
	return &runSet{max: max, byID: map[string]*runEntry{}, lists: map[listKey]*runList{}, strs: map[string]string{}}
}

func (s *runSet) intern(v string) string {
	if w, ok := s.strs[v]; ok {
		return w
	}
	s.strs[v] = v
	return v
}

func (s *runSet) keys(e *runEntry) [4]listKey {
	return [4]listKey{{}, {workflow: e.workflow}, {status: e.status}, {workflow: e.workflow, status: e.status}}
}

func (s *runSet) list(k listKey) *runList {
	l, ok := s.lists[k]
	if !ok {
		l = &runList{}
		s.lists[k] = l
	}
	return l
}

// put adds or updates a run from its summary.
func (s *runSet) put(r RunSummary) {
	e := &runEntry{id: r.ID, workflow: s.intern(r.Workflow), version: s.intern(r.Version), state: s.intern(r.State),
		err: truncateError(r.Error), status: RunStatus(s.intern(string(r.Status))),
		created: r.CreatedAt.UnixNano(), updated: r.UpdatedAt.UnixNano()}
	if r.CreatedAt.IsZero() {
		e.created = 0
	}
	if r.UpdatedAt.IsZero() {
		e.updated = 0
	}
	if !r.StartAt.IsZero() {
		e.start = r.StartAt.UnixNano()
	}
	if old, ok := s.byID[r.ID]; ok {
		if old.created == e.created && old.workflow == e.workflow && old.status == e.status {
			*old = *e // same lists, same place
			return
		}
		s.delete(r.ID)
	}
	if s.max > 0 && len(s.byID) >= s.max && s.horizon != 0 && e.created <= s.horizon {
		s.dropped++ // older than what the cap already dropped
		return
	}
	s.byID[e.id] = e
	for _, k := range s.keys(e) {
		s.list(k).insert(e)
	}
	for s.max > 0 && len(s.byID) > s.max {
		oldest := (*s.lists[listKey{}])[0]
		s.delete(oldest.id)
		s.dropped++
		s.horizon = max(s.horizon, oldest.created)
	}
}

// delete removes a run; an unknown id is ignored.
func (s *runSet) delete(id string) {
	e, ok := s.byID[id]
	if !ok {
		return
	}
	delete(s.byID, id)
	for _, k := range s.keys(e) {
		l := s.lists[k]
		l.remove(e)
		if len(*l) == 0 && k != (listKey{}) {
			delete(s.lists, k)
		}
	}
}

// RunQuery selects a page of runs from a [RunIndex].
type RunQuery struct {
	// Workflow selects one workflow's runs; "" selects all.
	Workflow string
	// Status selects runs in this status; "" selects all.
	Status RunStatus
	// Since selects runs created at or after it; zero selects all.
	Since time.Time
	// Offset skips this many matching runs, newest first; Limit caps the
	// page (0 returns no runs, only the counts).
	Offset, Limit int
}

// RunPage is one page of runs and the counts around it.
type RunPage struct {
	// Runs are the page, newest first (by creation time, then id).
	Runs []RunSummary
	// Matching counts the runs matching the whole query.
	Matching int
	// Total counts the runs matching Workflow and Since (any status), and
	// Counts splits them by status.
	Total  int
	Counts map[RunStatus]int
	// Held is how many runs the index holds. Dropped counts the records
	// left out to stay within RunIndexConfig.MaxRuns (a run dropped and
	// then updated counts again), and DroppedBefore is the creation time
	// at or before which runs may be missing; zero when nothing was
	// dropped.
	Held          int
	Dropped       uint64
	DroppedBefore time.Time
}

// page answers q. Its cost is the page size plus a few binary searches.
func (s *runSet) page(q RunQuery) RunPage {
	p := RunPage{Counts: map[RunStatus]int{}, Held: len(s.byID), Dropped: s.dropped, DroppedBefore: timeOf(s.horizon)}
	var since int64
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	inWindow := func(k listKey) (runList, int) {
		l, ok := s.lists[k]
		if !ok {
			return nil, 0
		}
		lo := 0
		if since != 0 {
			lo = l.since(since)
		}
		return *l, lo
	}
	for _, st := range RunStatuses() {
		l, lo := inWindow(listKey{workflow: q.Workflow, status: st})
		if n := len(l) - lo; n > 0 {
			p.Counts[st] = n
			p.Total += n
		}
	}
	l, lo := inWindow(listKey{workflow: q.Workflow, status: q.Status})
	p.Matching = len(l) - lo
	if q.Offset < 0 {
		q.Offset = 0
	}
	for i := len(l) - 1 - q.Offset; i >= lo && len(p.Runs) < q.Limit; i-- {
		p.Runs = append(p.Runs, l[i].summary())
	}
	return p
}

// truncateError cuts msg to RunSummaryErrorMax bytes on a character
// boundary.
func truncateError(msg string) string {
	if len(msg) <= RunSummaryErrorMax {
		return msg
	}
	const ell = "…"
	cut := RunSummaryErrorMax - len(ell)
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return strings.Clone(msg[:cut]) + ell
}
