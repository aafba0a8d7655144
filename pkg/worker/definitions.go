package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrDefinitionTooLarge is matched by the error [Worker.Start] returns when
// a workflow's definition is larger than the server's max payload (see
// fsm.Workflow.RegisterSplit for what makes a definition large).
var ErrDefinitionTooLarge = errors.New("worker: definition larger than the server's max payload")

// ErrDefinitionConflict is returned by [Worker.Start] when a workflow's
// explicit version (fsm.Workflow.Version) is already registered with
// different content. Give the changed workflow a new version, or leave the
// version unset so that it is derived from the content.
var ErrDefinitionConflict = errors.New("worker: definition version already registered with different content")

// latestAttempts bounds the compare-and-set rounds spent moving a
// workflow's latest pointer: each lost round means another writer moved it
// meanwhile, and the next round judges that writer's version.
const latestAttempts = 8

// registerDefinitions puts each workflow's definition under its version
// (created once, never overwritten) and moves the workflow's latest version
// to it when that version is the newest (see [Worker.registerLatest]). Runs
// are pinned to the version they started with, so a new version never
// changes a run in flight.
func (w *Worker) registerDefinitions(ctx context.Context) error {
	if len(w.machines) == 0 {
		return nil
	}
	kv, err := w.js.KeyValue(ctx, layout.DefinitionsBucket(w.names))
	if err != nil {
		return fmt.Errorf("worker: definitions bucket: %w", notProvisioned(err))
	}
	for _, m := range w.machines {
		def := m.Definition()
		data, err := wirecodec.Encode(def)
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		key := layout.DefinitionKey(def.Name, def.Version)
		created, err := kv.Create(ctx, key, data)
		if err != nil {
			if errors.Is(err, nats.ErrMaxPayload) {
				return fmt.Errorf("%w: register %s: the definition is %d bytes, the server accepts %d (max_payload): "+
					"a static split of many different tasks is stored branch by branch; use a dynamic split "+
					"(fsm.SplitInto) for a large fan-out, or raise max_payload in the server's configuration (%w)",
					ErrDefinitionTooLarge, key, len(data), w.nc.MaxPayload(), err)
			}
			if !kvcas.Conflict(err) {
				return fmt.Errorf("worker: register %s: %w", key, err)
			}
			e, err := kv.Get(ctx, key)
			if err != nil {
				return fmt.Errorf("worker: register %s: %w", key, err)
			}
			if !bytes.Equal(e.Value(), data) {
				return fmt.Errorf("%w: workflow %q version %q: this worker's workflow differs from the registered one; "+
					"bump its version (.Version) or leave the version unset so that it is derived from the content",
					ErrDefinitionConflict, def.Name, def.Version)
			}
			// A version key is stored again only by a promote (the same
			// bytes): its revision is when it was created or last promoted.
			created = e.Revision()
		}
		if err := w.registerLatest(ctx, kv, def.Name, def.Version, created); err != nil {
			return err
		}
	}
	return nil
}

// registerLatest moves workflow name's latest pointer to version, whose
// definition key was created at revision created, unless the version latest
// names was created after it: a worker of an older version (an old pod
// restarting in a rolling deploy) leaves latest on the newer one. Latest
// also moves when it is missing or names a version that was deleted. A
// worker that created its version but died before moving latest moves it
// when it starts again, as its version is still the newest.
//
// Each move is a compare-and-set on the latest key, so two workers racing
// never move it backwards: the loser re-reads and judges the winner's
// version. client.Client.PromoteWorkflowVersion moves latest anywhere.
func (w *Worker) registerLatest(ctx context.Context, kv jetstream.KeyValue, name, version string, created uint64) error {
	latestKey := layout.LatestDefinitionKey(name)
	for range latestAttempts {
		e, err := kv.Get(ctx, latestKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := kv.Create(ctx, latestKey, []byte(version)); kvcas.Conflict(err) {
				continue
			} else if err != nil {
				return fmt.Errorf("worker: register latest %s: %w", name, err)
			}
			w.log.Info("workflow registered", "workflow", name, "version", version, "latest", version)
			return nil
		}
		if err != nil {
			return fmt.Errorf("worker: register latest %s: %w", name, err)
		}
		current := string(e.Value())
		if current == version {
			w.log.Info("workflow registered", "workflow", name, "version", version, "latest", version)
			return nil
		}
		newer, err := createdAfter(ctx, kv, name, current, created)
		if err != nil {
			return fmt.Errorf("worker: register latest %s: %w", name, err)
		}
		if newer {
			w.log.Info("workflow registered; latest stays at "+current+
				" (registered after this version); canoctl workflows promote to change it",
				"workflow", name, "version", version, "latest", current)
			return nil
		}
		if _, err := kv.Update(ctx, latestKey, []byte(version), e.Revision()); kvcas.Conflict(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("worker: register latest %s: %w", name, err)
		}
		w.log.Info("workflow registered", "workflow", name, "version", version, "latest", version, "previous", current)
		return nil
	}
	return fmt.Errorf("worker: register latest %s: the latest version kept changing under %d attempts to move it; start again",
		name, latestAttempts)
}

// createdAfter reports whether version of workflow name is registered with
// a definition key created after revision rev. A version that is not
// registered (deleted, or a latest pointer that names no valid version) is
// not.
func createdAfter(ctx context.Context, kv jetstream.KeyValue, name, version string, rev uint64) (bool, error) {
	if protocol.ValidToken(version) != nil {
		return false, nil
	}
	e, err := kv.Get(ctx, layout.DefinitionKey(name, version))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return e.Revision() > rev, nil
}
