package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/cano-nats/cano/internal/deadline"
)

// ErrNotScheduled is returned by [Client.StartNow] for a run that is not
// waiting for its start.
var ErrNotScheduled = errors.New("client: run is not scheduled")

// StartNow starts run runID, triggered to start later
// ([TriggerOpts].StartAt), now rather than at its time — asynqmon's "run
// now" for a scheduled task. It publishes a start-now request to the
// control stream (cano.control.start.ID, with an empty body, as the nats
// CLI can too): the coordinator that applies it starts the run (its
// StartAt becomes now, its started event says "ahead of its schedule for
// …") and removes the start timer still waiting. It returns once the
// request is stored, not when the run has started or ended ([Client.Await] that). An
// unknown run matches [ErrNotFound]; one that is not scheduled (it has
// started or ended) is refused with an error matching [ErrNotScheduled].
// If ctx has no deadline, Config.Timeout applies to the whole call.
func (c *Client) StartNow(ctx context.Context, runID string) error {
	if runID == "" {
		return errors.New("client: StartNow: no run id given")
	}
	ctx, cancel := deadline.Default(ctx, c.cfg.Timeout)
	defer cancel()
	r, err := c.Get(ctx, runID)
	if err != nil {
		return err
	}
	if r.Status != RunScheduled {
		return fmt.Errorf("%w: run %s is %s: only a run waiting for its start can be started now", ErrNotScheduled, runID, r.Status)
	}
	if _, err := c.js.Publish(ctx, c.names.StartNowSubject(runID), nil); err != nil {
		return fmt.Errorf("client: start %s now: %w", runID, err)
	}
	return nil
}
