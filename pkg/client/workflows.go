package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrWorkflowNotFound is returned by [Client.Workflow] for a workflow, or a
// version of it, that no worker has registered.
var ErrWorkflowNotFound = errors.New("client: workflow not found")

// WorkflowInfo describes a registered workflow: its versions and the
// definition a trigger runs by default.
type WorkflowInfo struct {
	Name string
	// Latest is the version a trigger without TriggerOpts.DefVersion runs:
	// the one the most recently started worker registered. "" if the
	// bucket holds versions but no latest pointer.
	Latest string
	// Versions lists every registered version, oldest registration first.
	Versions []WorkflowVersion
	// Definition is the Latest version's definition: initial state, states
	// (each single, with its task kind, or a split, with its branch tasks
	// and join strategy and join state), exit states, queue and timeouts.
	// Transitions between states are chosen by tasks at run time, so the
	// static edges are the initial state, the join states and the exits.
	// Nil if Latest is "" or its definition does not decode.
	Definition *protocol.Definition
}

// WorkflowVersion is one registered version of a workflow.
type WorkflowVersion struct {
	Version string
	// Registered is when a worker first registered it.
	Registered time.Time
}

// Workflows lists every workflow registered in the definitions bucket,
// sorted by name. A version whose definition does not decode is listed
// without its definition ([Client.Workflow] returns the decode error). It
// reads the whole bucket: meant for tools, not hot paths. If ctx has no
// deadline, Config.Timeout applies.
func (c *Client) Workflows(ctx context.Context) ([]WorkflowInfo, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, c.names.DefinitionsBucket())
	if err != nil {
		return nil, fmt.Errorf("client: definitions bucket: %w", err)
	}
	type version struct {
		WorkflowVersion
		rev   uint64
		value []byte
	}
	byName := map[string]*WorkflowInfo{}
	versions := map[string][]version{}
	info := func(name string) *WorkflowInfo {
		if byName[name] == nil {
			byName[name] = &WorkflowInfo{Name: name}
		}
		return byName[name]
	}
	err = eachEntry(ctx, kv, "workflows", func(e jetstream.KeyValueEntry) {
		kind, name, ver, ok := protocol.ParseDefinitionsKey(e.Key())
		switch {
		case !ok:
		case kind == protocol.DefinitionsKeyLatest:
			info(name).Latest = string(e.Value())
		default:
			info(name)
			// A version key is created once and never changed, so its
			// creation time is when it was first registered.
			versions[name] = append(versions[name], version{WorkflowVersion{ver, e.Created()}, e.Revision(), e.Value()})
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]WorkflowInfo, 0, len(byName))
	for name, wi := range byName {
		vs := versions[name]
		sort.Slice(vs, func(i, j int) bool { return vs[i].rev < vs[j].rev })
		for _, v := range vs {
			wi.Versions = append(wi.Versions, v.WorkflowVersion)
			if v.Version == wi.Latest {
				var def protocol.Definition
				if protocol.Decode(v.value, &def, maxStoredSize) == nil {
					wi.Definition = &def
				}
			}
		}
		out = append(out, *wi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Workflow returns the definition of workflow name at version ("" means the
// latest registered version). It returns an error matching
// [ErrWorkflowNotFound] when no worker has registered it, and the decode
// error (wrapping a protocol sentinel) for a definition that does not
// decode. If ctx has no deadline, Config.Timeout applies.
func (c *Client) Workflow(ctx context.Context, name, version string) (*protocol.Definition, error) {
	if err := protocol.ValidToken(name); err != nil {
		return nil, fmt.Errorf("client: workflow name: %w", err)
	}
	if version != "" {
		if err := protocol.ValidToken(version); err != nil {
			return nil, fmt.Errorf("client: workflow version: %w", err)
		}
	}
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, c.names.DefinitionsBucket())
	if err != nil {
		return nil, fmt.Errorf("client: definitions bucket: %w", err)
	}
	if version == "" {
		e, err := kv.Get(ctx, protocol.LatestDefinitionKey(name))
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil, fmt.Errorf("%w: %q", ErrWorkflowNotFound, name)
			}
			return nil, fmt.Errorf("client: workflow %s: %w", name, err)
		}
		version = string(e.Value())
	}
	e, err := kv.Get(ctx, protocol.DefinitionKey(name, version))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: %q version %q", ErrWorkflowNotFound, name, version)
		}
		return nil, fmt.Errorf("client: workflow %s version %s: %w", name, version, err)
	}
	var def protocol.Definition
	if err := protocol.Decode(e.Value(), &def, maxStoredSize); err != nil {
		return nil, fmt.Errorf("client: workflow %s version %s: %w", name, version, err)
	}
	return &def, nil
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
}

// DeleteWorkflowVersion removes one registered version of workflow name from
// the definitions bucket. Runs are pinned to the version they started with:
// delete only versions no running run still uses (a run whose version is
// gone cannot move on). A worker that still hosts the version registers it
// again when it restarts.
//
// It returns an error matching [ErrWorkflowNotFound] when the version is
// not registered, and [ErrLatestVersion] for the latest version unless
// opts.AllowLatest is set. If ctx has no deadline, Config.Timeout applies.
func (c *Client) DeleteWorkflowVersion(ctx context.Context, name, version string, opts *DeleteWorkflowVersionOpts) error {
	if opts == nil {
		opts = &DeleteWorkflowVersionOpts{}
	}
	if err := protocol.ValidToken(name); err != nil {
		return fmt.Errorf("client: workflow name: %w", err)
	}
	if err := protocol.ValidToken(version); err != nil {
		return fmt.Errorf("client: workflow version: %w", err)
	}
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, c.names.DefinitionsBucket())
	if err != nil {
		return fmt.Errorf("client: definitions bucket: %w", err)
	}
	key := protocol.DefinitionKey(name, version)
	if _, err := kv.Get(ctx, key); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %q version %q", ErrWorkflowNotFound, name, version)
		}
		return fmt.Errorf("client: workflow %s version %s: %w", name, version, err)
	}
	latestKey := protocol.LatestDefinitionKey(name)
	latest, err := kv.Get(ctx, latestKey)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("client: workflow %s: latest version: %w", name, err)
	}
	isLatest := err == nil && string(latest.Value()) == version
	if isLatest && !opts.AllowLatest {
		return fmt.Errorf("%w: %q version %q is the version new runs use; set DeleteWorkflowVersionOpts.AllowLatest to delete it anyway, "+
			"or register a newer version first", ErrLatestVersion, name, version)
	}
	if err := kv.Purge(ctx, key); err != nil {
		return fmt.Errorf("client: delete workflow %s version %s: %w", name, version, err)
	}
	if !isLatest {
		return nil
	}
	// Move the latest pointer to the newest version left, with
	// compare-and-set: a worker registering meanwhile wins.
	list, err := c.Workflows(ctx)
	if err != nil {
		return err
	}
	next := ""
	for _, wi := range list {
		if wi.Name == name {
			for _, v := range wi.Versions {
				if v.Version != version {
					next = v.Version
				}
			}
		}
	}
	if next == "" {
		err = kv.Purge(ctx, latestKey, jetstream.LastRevision(latest.Revision()))
	} else {
		_, err = kv.Update(ctx, latestKey, []byte(next), latest.Revision())
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("client: workflow %s: move the latest version: %w", name, err)
	}
	return nil
}
