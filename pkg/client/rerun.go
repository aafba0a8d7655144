package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrNotEnded is returned by [Client.Rerun] for a run that is scheduled or
// running.
var ErrNotEnded = errors.New("client: run has not ended")

// RerunOpts are the optional parameters of [Client.Rerun]; nil means
// defaults.
type RerunOpts struct {
	// LatestVersion runs the workflow's latest version instead of the
	// version the run was pinned to: for a run that failed on a bug whose
	// fix changed the definition (a retry policy, a timeout, a state).
	LatestVersion bool
	// IdempotencyKey makes a second rerun of the same run with the same key
	// return the first rerun's id and start nothing (a request sent twice).
	// Keys are the run's own: the same key on another run, or on a
	// trigger, is another key.
	IdempotencyKey string
	// ErrorIfExists makes a rerun that starts nothing, because this run
	// has a rerun with IdempotencyKey already, return that rerun's id with
	// an error matching [ErrRunExists] (as [TriggerOpts].ErrorIfExists).
	ErrorIfExists bool
}

// Rerun starts a new run like run runID, which must have ended: the same
// workflow, definition version (see [RerunOpts].LatestVersion), initial
// state and input. It starts at once, also when run runID was one that
// started later (TriggerOpts.StartAt). It returns the new run's id — what River's and
// asynqmon's "retry" and Temporal's "start workflow like this one" do. An
// unknown run matches [ErrNotFound]; a run that has not ended is refused
// (cancel it first, or wait for it) with an error matching [ErrNotEnded]. If ctx has no deadline, Config.Timeout
// applies to the whole call. Safe for concurrent use.
func (c *Client) Rerun(ctx context.Context, runID string, opts *RerunOpts) (string, error) {
	if opts == nil {
		opts = &RerunOpts{}
	}
	if runID == "" {
		return "", errors.New("client: Rerun: no run id given")
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	r, err := c.Get(ctx, runID)
	if err != nil {
		return "", err
	}
	if !r.Status.Terminal() {
		return "", fmt.Errorf("%w: run %s is %s: rerun a run once it has ended (cancel it first, or wait for it)", ErrNotEnded, runID, r.Status)
	}
	topts := &TriggerOpts{ErrorIfExists: opts.ErrorIfExists}
	if opts.IdempotencyKey != "" {
		topts.IdempotencyKey = "rerun/" + runID + "/" + opts.IdempotencyKey
	}
	if !opts.LatestVersion {
		topts.DefVersion = r.Version
	}
	if len(r.Path) > 0 {
		// The initial state is named only when the run did not begin in
		// its definition's own: a rerun on the latest version then begins
		// where that version does.
		def, err := c.Workflow(ctx, r.Workflow, r.Version)
		switch {
		case err == nil && r.Path[0] != def.Initial:
			topts.InitialState = r.Path[0]
		case errors.Is(err, ErrWorkflowNotFound) && !opts.LatestVersion:
			return "", fmt.Errorf("client: rerun %s: version %s of %s is no longer registered: rerun it on the workflow's latest version (canoctl runs rerun --latest; RerunOpts.LatestVersion): %w",
				runID, r.Version, r.Workflow, err)
		case err != nil && !errors.Is(err, ErrWorkflowNotFound):
			return "", fmt.Errorf("client: rerun %s: %w", runID, err)
		}
	}
	switch {
	case len(r.input) == 0:
	case r.inputFormat == protocol.InputJSON:
		topts.Input = json.RawMessage(r.input)
	default:
		topts.Input = r.input // msgpack, sent as is
	}
	id, err := c.Trigger(ctx, r.Workflow, topts)
	if err != nil {
		return id, fmt.Errorf("client: rerun %s: %w", runID, err)
	}
	return id, nil
}
