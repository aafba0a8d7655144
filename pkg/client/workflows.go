package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrWorkflowNotFound is returned by [Client.Workflow] for a workflow, or a
// version of it, that no worker has registered.
var ErrWorkflowNotFound = errors.New("client: workflow not found")

// WorkflowInfo describes a registered workflow: its versions, and the
// states of one version (the latest, for [Client.Workflows]).
//
// Transitions out of a task state are chosen by its task at run time, so
// the definition knows only these edges: the initial state, each split's
// join state ([StateInfo].Next) and the exit states. A diagram tool draws
// those, and may add the edges runs took (Run.Path).
type WorkflowInfo struct {
	// Name is the workflow's name.
	Name string
	// Version is the version the other fields below describe; "" when its
	// definition could not be read (then Initial is "" and States nil).
	Version string
	// Latest is the version a trigger without TriggerOpts.DefVersion runs:
	// the version whose definition was first registered last (a worker of
	// an older version leaves it alone), or the one last promoted with
	// [Client.PromoteWorkflowVersion]. "" if the bucket holds versions but
	// no latest pointer.
	Latest string
	// Versions lists every registered version, oldest registration first.
	Versions []WorkflowVersion
	// Initial is the state runs begin in unless a trigger names another.
	Initial string
	// States lists the states in registration order, then the exit states.
	States []StateInfo
	// Queue is the task queue its tasks are published on.
	Queue string
	// TotalTimeout bounds each run; 0 means none.
	TotalTimeout time.Duration
	// MaxTransitions caps state entries per run; 0 means the engine's
	// default (fsm.MaxTransitionsDefault).
	MaxTransitions int
}

// WorkflowVersion is one registered version of a workflow.
type WorkflowVersion struct {
	// Version is the version's name: the one set with
	// fsm.Workflow.Version, or a hash of the definition's content.
	Version string
	// Registered is when a worker first registered it, or when it was
	// last promoted ([Client.PromoteWorkflowVersion]): the order in which
	// workers move latest.
	Registered time.Time
}

// StateKind says what a state of a workflow does.
type StateKind string

// State kinds.
const (
	// StateTask runs one task, which chooses the next state.
	StateTask StateKind = "task"
	// StateSplit runs its branches' tasks in parallel and joins them into
	// its join state.
	StateSplit StateKind = "split"
	// StateExit completes the run when entered.
	StateExit StateKind = "exit"
)

// StateInfo is one state of a [WorkflowInfo].
type StateInfo struct {
	// Name is the state's name.
	Name string
	// Kind says what the state does.
	Kind StateKind
	// Task is the task kind a [StateTask] runs; "" for other kinds.
	Task string
	// Branches lists the task kind of each branch of a [StateSplit], in
	// branch order; nil for other kinds. (A task may also return a split
	// at run time; its branches are not in the definition.)
	Branches []string
	// Join is how a [StateSplit] joins its branches; nil for other kinds.
	Join *JoinInfo
	// Next lists the states the definition says may follow: a split's
	// join state. Nil for a task state, whose task chooses at run time,
	// and for an exit.
	Next []string
	// OnFailure is the state a final failure of this state moves the run
	// to (fsm.Workflow.OnFailure); "" when a failure fails the run.
	OnFailure string
	// Params are a [StateTask]'s task parameters as the definition holds
	// them (msgpack), and BranchParams each branch's of a [StateSplit], in
	// branch order; nil for other kinds and for tasks without parameters.
	Params       []byte
	BranchParams [][]byte
	// Policy is how a [StateTask]'s attempts are made, and BranchPolicies
	// each branch's of a [StateSplit]; nil for other kinds.
	Policy         *TaskPolicy
	BranchPolicies []*TaskPolicy
}

// TaskPolicy is how a task's attempts are made, as its definition says
// (fsm.TaskConfig).
type TaskPolicy struct {
	// Retry is the retry mode: "none", "fixed" or "exponential".
	// MaxRetries is how many attempts may follow the first; Delay the wait
	// before the first retry (every retry's, for "fixed"); an
	// "exponential" wait grows by Multiplier up to MaxDelay, with Jitter
	// its random share.
	Retry      string
	MaxRetries int
	Delay      time.Duration
	Multiplier float64
	MaxDelay   time.Duration
	Jitter     float64
	// AttemptTimeout bounds each attempt; 0 means none.
	AttemptTimeout time.Duration
	// Breaker names the circuit breaker guarding the task; "" means none.
	Breaker string
}

func policyFrom(t *protocol.TaskSpec) *TaskPolicy {
	r := t.Retry
	return &TaskPolicy{Retry: string(r.Mode), MaxRetries: int(r.MaxRetries), Delay: time.Duration(r.BaseDelay),
		Multiplier: r.Multiplier, MaxDelay: time.Duration(r.MaxDelay), Jitter: r.Jitter,
		AttemptTimeout: time.Duration(t.AttemptTimeout), Breaker: t.Breaker}
}

// JoinInfo is how a split joins its branches.
type JoinInfo struct {
	// Strategy is the join strategy's name: "all", "any", "quorum",
	// "percentage", "partial_results" or "partial_timeout".
	Strategy string
	// N is the branch count a "quorum" or "partial_results" join needs.
	N int
	// Percentage is the share of branches a "percentage" join needs, in
	// (0,1].
	Percentage float64
	// State is the join state the run enters once the join decides.
	State string
	// Timeout bounds the wait for the branches; 0 means none.
	Timeout time.Duration
	// Bulkhead is the most branches in flight at once; 0 means no limit.
	Bulkhead int
}

// describe fills w's definition fields from def.
func (w *WorkflowInfo) describe(def *protocol.Definition) {
	w.Version = def.Version
	w.Initial = def.Initial
	w.Queue = def.Queue
	w.TotalTimeout = time.Duration(def.TotalTimeout)
	w.MaxTransitions = int(def.MaxTransitions)
	w.States = make([]StateInfo, 0, len(def.States)+len(def.Exits))
	for i := range def.States {
		w.States = append(w.States, stateFrom(&def.States[i]))
	}
	for _, e := range def.Exits {
		w.States = append(w.States, StateInfo{Name: e, Kind: StateExit})
	}
}

// stateFrom converts a definition's state.
func stateFrom(s *protocol.StateDef) StateInfo {
	out := StateInfo{Name: s.Name, OnFailure: s.OnFailure}
	switch {
	case s.Kind == protocol.StateSplit && s.Split != nil:
		out.Kind = StateSplit
		n := s.Split.Len()
		out.Branches = make([]string, n)
		out.BranchParams = make([][]byte, n)
		out.BranchPolicies = make([]*TaskPolicy, n)
		for i := range n {
			t := s.Split.Task(i)
			out.Branches[i], out.BranchParams[i], out.BranchPolicies[i] = t.Kind, t.Params, policyFrom(&t)
		}
		j := s.Split.Join
		out.Join = &JoinInfo{Strategy: string(j.Strategy), N: int(j.N), Percentage: j.P, State: j.JoinState,
			Timeout: time.Duration(j.Timeout), Bulkhead: int(j.Bulkhead)}
		out.Next = []string{j.JoinState}
	default:
		out.Kind = StateTask
		if s.Task != nil {
			out.Task, out.Params, out.Policy = s.Task.Kind, s.Task.Params, policyFrom(s.Task)
		}
	}
	return out
}

// storedVersion is one version key of the definitions bucket.
type storedVersion struct {
	WorkflowVersion
	rev   uint64
	value []byte
}

// definitions reads the definitions bucket: the latest pointer and the
// versions (oldest registration first) of every workflow.
func (c *Client) definitions(ctx context.Context, kv jetstream.KeyValue) (latest map[string]string, versions map[string][]storedVersion, err error) {
	latest, versions = map[string]string{}, map[string][]storedVersion{}
	err = c.eachEntry(ctx, kv, "workflows", func(e jetstream.KeyValueEntry) {
		kind, name, ver, ok := layout.ParseDefinitionsKey(e.Key())
		switch {
		case !ok:
		case kind == layout.DefinitionsKeyLatest:
			latest[name] = string(e.Value())
		default:
			// A version key is created once and never changed, so its
			// creation time is when it was first registered.
			versions[name] = append(versions[name], storedVersion{WorkflowVersion{ver, e.Created()}, e.Revision(), e.Value()})
		}
	})
	if err != nil {
		return nil, nil, err
	}
	for _, vs := range versions {
		sort.Slice(vs, func(i, j int) bool { return vs[i].rev < vs[j].rev })
	}
	return latest, versions, nil
}

func versionList(vs []storedVersion) []WorkflowVersion {
	out := make([]WorkflowVersion, len(vs))
	for i, v := range vs {
		out[i] = v.WorkflowVersion
	}
	return out
}

// Workflows lists every workflow registered in the definitions bucket,
// sorted by name, each described at its latest version. A workflow whose
// latest definition is missing or does not decode is listed with its
// versions only (Version ""; [Client.Workflow] returns the decode error).
// It reads the whole bucket: meant for tools, not hot paths. If ctx has no
// deadline, Config.Timeout applies.
func (c *Client) Workflows(ctx context.Context) ([]WorkflowInfo, error) {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, layout.DefinitionsBucket(c.names))
	if err != nil {
		return nil, fmt.Errorf("client: definitions bucket: %w", err)
	}
	latest, versions, err := c.definitions(ctx, kv)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for n := range latest {
		names[n] = true
	}
	for n := range versions {
		names[n] = true
	}
	out := make([]WorkflowInfo, 0, len(names))
	for name := range names {
		wi := WorkflowInfo{Name: name, Latest: latest[name], Versions: versionList(versions[name])}
		for _, v := range versions[name] {
			if v.Version == wi.Latest {
				var def protocol.Definition
				if wirecodec.Decode(v.value, &def, maxStoredSize) == nil {
					wi.describe(&def)
				}
			}
		}
		out = append(out, wi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Workflow describes workflow name at version ("" means the latest
// registered version), with its list of versions. It returns an error
// matching [ErrWorkflowNotFound] when no worker has registered it, one
// wrapping protocol.ErrInvalidName for a name or version that is not a
// valid token, and the decode error (wrapping a protocol sentinel) for a
// definition that does not decode. It reads the whole definitions bucket
// for the version list. If ctx has no deadline, Config.Timeout applies.
func (c *Client) Workflow(ctx context.Context, name, version string) (*WorkflowInfo, error) {
	if err := protocol.ValidToken(name); err != nil {
		return nil, fmt.Errorf("client: workflow name: %w", err)
	}
	if version != "" {
		if err := protocol.ValidToken(version); err != nil {
			return nil, fmt.Errorf("client: workflow version: %w", err)
		}
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, layout.DefinitionsBucket(c.names))
	if err != nil {
		return nil, fmt.Errorf("client: definitions bucket: %w", err)
	}
	if version == "" {
		e, err := kv.Get(ctx, layout.LatestDefinitionKey(name))
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil, fmt.Errorf("%w: %q", ErrWorkflowNotFound, name)
			}
			return nil, fmt.Errorf("client: workflow %s: %w", name, err)
		}
		version = string(e.Value())
	}
	e, err := kv.Get(ctx, layout.DefinitionKey(name, version))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: %q version %q", ErrWorkflowNotFound, name, version)
		}
		return nil, fmt.Errorf("client: workflow %s version %s: %w", name, version, err)
	}
	var def protocol.Definition
	if err := wirecodec.Decode(e.Value(), &def, maxStoredSize); err != nil {
		return nil, fmt.Errorf("client: workflow %s version %s: %w", name, version, err)
	}
	latest, versions, err := c.definitions(ctx, kv)
	if err != nil {
		return nil, err
	}
	wi := &WorkflowInfo{Name: name, Latest: latest[name], Versions: versionList(versions[name])}
	wi.describe(&def)
	return wi, nil
}

// ErrLatestVersion is returned by [Client.DeleteWorkflowVersion] for the
// version a trigger runs by default, unless
// DeleteWorkflowVersionOpts.AllowLatest is set.
var ErrLatestVersion = errors.New("client: the latest version of a workflow")

// DeleteWorkflowVersionOpts are the options of
// [Client.DeleteWorkflowVersion]; nil means the zero value.
type DeleteWorkflowVersionOpts struct {
	// AllowLatest allows deleting the latest version: the latest pointer
	// moves to the most recently registered version left, or is removed
	// when none is left (then triggers naming no version are refused until
	// a worker registers the workflow again). False refuses with
	// [ErrLatestVersion].
	AllowLatest bool
	// AllowInUse allows deleting a version that running or scheduled runs
	// are pinned to. Such a run cannot move on until the version is
	// registered again; it can still be cancelled, and its total timeout
	// still ends it. False refuses with [ErrVersionInUse].
	AllowInUse bool
}

// ErrVersionInUse is matched (errors.Is) by the [*VersionInUseError]
// [Client.DeleteWorkflowVersion] returns for a version that running or
// scheduled runs are pinned to, unless DeleteWorkflowVersionOpts.AllowInUse
// is set.
var ErrVersionInUse = errors.New("client: a workflow version in use")

// VersionInUseError says which runs keep [Client.DeleteWorkflowVersion]
// from deleting a version. It matches [ErrVersionInUse].
type VersionInUseError struct {
	Workflow, Version string
	// Runs are the ids of the running or scheduled runs pinned to the
	// version, sorted.
	Runs []string
}

// Error says which runs use the version, and what to do.
func (e *VersionInUseError) Error() string {
	some := strings.Join(e.Runs[:min(len(e.Runs), 3)], ", ")
	if len(e.Runs) > 3 {
		some += ", …"
	}
	return fmt.Sprintf("client: workflow %q version %q is in use: %d running or scheduled runs use it (%s), and could not move on without it; "+
		"wait for them to end or cancel them (canoctl runs list --workflow %s), then delete it, "+
		"or set DeleteWorkflowVersionOpts.AllowInUse to delete it anyway", e.Workflow, e.Version, len(e.Runs), some, e.Workflow)
}

// Is reports whether target is [ErrVersionInUse].
func (e *VersionInUseError) Is(target error) bool { return target == ErrVersionInUse }

// DeleteWorkflowVersion removes one registered version of workflow name from
// the definitions bucket. Runs are pinned to the version they were
// triggered with, so by default it refuses a version that a running or
// scheduled run uses (it reads every run record to know). A worker that
// still hosts the version registers it again when it restarts.
//
// It returns an error matching [ErrWorkflowNotFound] when the version is
// not registered, [ErrLatestVersion] for the latest version unless
// opts.AllowLatest is set, and [ErrVersionInUse] for a version in use
// unless opts.AllowInUse is set. A run triggered with this version while
// the call runs is not seen: it waits for the version like a run of a
// version deleted with AllowInUse. If ctx has no deadline, Config.Timeout
// applies.
func (c *Client) DeleteWorkflowVersion(ctx context.Context, name, version string, opts *DeleteWorkflowVersionOpts) error {
	if opts == nil {
		opts = &DeleteWorkflowVersionOpts{}
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.versionBucket(ctx, name, version)
	if err != nil {
		return err
	}
	key := layout.DefinitionKey(name, version)
	if _, err := kv.Get(ctx, key); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %q version %q", ErrWorkflowNotFound, name, version)
		}
		return fmt.Errorf("client: workflow %s version %s: %w", name, version, err)
	}
	latestKey := layout.LatestDefinitionKey(name)
	latest, err := kv.Get(ctx, latestKey)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("client: workflow %s: latest version: %w", name, err)
	}
	isLatest := err == nil && string(latest.Value()) == version
	if isLatest && !opts.AllowLatest {
		return fmt.Errorf("%w: %q version %q is the version new runs use; set DeleteWorkflowVersionOpts.AllowLatest to delete it anyway, "+
			"or register a newer version first", ErrLatestVersion, name, version)
	}
	if !opts.AllowInUse {
		if err := c.versionUnused(ctx, name, version); err != nil {
			return err
		}
	}
	if err := kv.Purge(ctx, key); err != nil {
		return fmt.Errorf("client: delete workflow %s version %s: %w", name, version, err)
	}
	if !isLatest {
		return nil
	}
	// Move the latest pointer to the newest version left, with
	// compare-and-set: a worker registering meanwhile wins.
	_, versions, err := c.definitions(ctx, kv)
	if err != nil {
		return err
	}
	next := ""
	for _, v := range versions[name] {
		if v.Version != version {
			next = v.Version
		}
	}
	if next == "" {
		err = kv.Purge(ctx, latestKey, jetstream.LastRevision(latest.Revision()))
	} else {
		_, err = kv.Update(ctx, latestKey, []byte(next), latest.Revision())
	}
	if err != nil && !kvcas.Conflict(err) {
		return fmt.Errorf("client: workflow %s: move the latest version: %w", name, err)
	}
	return nil
}

// versionUnused returns a [*VersionInUseError] when running or scheduled
// runs of workflow name are pinned to version.
func (c *Client) versionUnused(ctx context.Context, name, version string) error {
	runs, err := c.List(ctx, &ListOpts{Workflow: name})
	if err != nil {
		return err
	}
	var live []string
	for _, r := range runs {
		if r.Version == version && !r.Status.Terminal() {
			live = append(live, r.ID)
		}
	}
	if len(live) == 0 {
		return nil
	}
	sort.Strings(live)
	return &VersionInUseError{Workflow: name, Version: version, Runs: live}
}

// PromoteWorkflowVersion makes version the latest version of workflow name:
// the one triggers that name no version run. It is the rollback after a
// deploy: workers move latest only to a version first registered after the
// current latest, so restarting workers of an older version never moves it
// back, while this moves it to any registered version. The promoted
// version counts as registered now (its definition is stored again, the
// same bytes), so workers of the version rolled back from, restarting,
// leave latest on it too; it holds until a worker registers a version new
// to the bucket. Runs already started stay on their version.
//
// It returns an error matching [ErrWorkflowNotFound] when no worker has
// registered the workflow or that version of it (the message lists the
// registered versions), and one wrapping protocol.ErrInvalidName for a name
// or version that is not a valid token. If ctx has no deadline,
// Config.Timeout applies.
func (c *Client) PromoteWorkflowVersion(ctx context.Context, name, version string) error {
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.versionBucket(ctx, name, version)
	if err != nil {
		return err
	}
	def, err := kv.Get(ctx, layout.DefinitionKey(name, version))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		_, versions, err := c.definitions(ctx, kv)
		if err != nil {
			return err
		}
		if len(versions[name]) == 0 {
			return fmt.Errorf("%w: %q: no worker has registered it", ErrWorkflowNotFound, name)
		}
		names := make([]string, len(versions[name]))
		for i, v := range versions[name] {
			names[i] = v.Version
		}
		return fmt.Errorf("%w: %q has no version %q (registered: %s)", ErrWorkflowNotFound, name, version,
			strings.Join(names, ", "))
	}
	if err != nil {
		return fmt.Errorf("client: workflow %s version %s: %w", name, version, err)
	}
	// The same definition is stored again, so it counts as registered now:
	// workers of a version registered before this moment — the newer
	// version being rolled back, restarting — leave latest here.
	if _, err := kv.Update(ctx, def.Key(), def.Value(), def.Revision()); err != nil {
		return fmt.Errorf("client: promote workflow %s version %s: %w", name, version, err)
	}
	if _, err := kv.PutString(ctx, layout.LatestDefinitionKey(name), version); err != nil {
		return fmt.Errorf("client: promote workflow %s version %s: %w", name, version, err)
	}
	return nil
}

// versionBucket checks a workflow's name and version and returns the
// definitions bucket, for a call on that version.
func (c *Client) versionBucket(ctx context.Context, name, version string) (jetstream.KeyValue, error) {
	if err := protocol.ValidToken(name); err != nil {
		return nil, fmt.Errorf("client: workflow name: %w", err)
	}
	if err := protocol.ValidToken(version); err != nil {
		return nil, fmt.Errorf("client: workflow version: %w", err)
	}
	kv, err := c.js.KeyValue(ctx, layout.DefinitionsBucket(c.names))
	if err != nil {
		return nil, fmt.Errorf("client: definitions bucket: %w", err)
	}
	return kv, nil
}
