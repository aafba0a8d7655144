// Package kvpurge deletes a finished run's keys from the tasks' store
// (pkg/kvstore). It is the coordinator's: tasks and clients never purge.
package kvpurge

import (
	"context"
	"errors"
	"fmt"

	"github.com/cano-nats/cano/pkg/kvstore"
)

// PurgeRun deletes every key of the run's scope ([kvstore.RunScope]) from store,
// which must be the unscoped store. It keeps going past a failed delete and
// returns all failures joined; running it again is safe.
//
// Per-run keys outlive their run so that the last states and clients can
// read them. The coordinator calls PurgeRun a configurable time after a run
// ends, from a durable timer, so the purge happens even if the process that
// finished the run is gone.
func PurgeRun(ctx context.Context, store kvstore.Store, runID string) error {
	sc := kvstore.RunScope(runID)
	if err := sc.Err(); err != nil {
		return err
	}
	keys, err := store.Keys(ctx, sc.Prefix())
	if err != nil {
		return fmt.Errorf("kvstore: purge run %s: %w", runID, err)
	}
	var errs []error
	for _, k := range keys {
		if err := store.Delete(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kvstore: purge run %s: %d of %d keys not deleted: %w",
			runID, len(errs), len(keys), errors.Join(errs...))
	}
	return nil
}
