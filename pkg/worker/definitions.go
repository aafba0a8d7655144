package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
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

// registerDefinitions puts each workflow's definition under its version
// (created once, never overwritten) and points the workflow's latest
// version at it. Runs are pinned to the version they started with, so a
// new version never changes a run in flight.
func (w *Worker) registerDefinitions(ctx context.Context) error {
	if len(w.machines) == 0 {
		return nil
	}
	kv, err := w.js.KeyValue(ctx, layout.DefinitionsBucket(w.names))
	if err != nil {
		return fmt.Errorf("worker: definitions bucket: %w", err)
	}
	for _, m := range w.machines {
		def := m.Definition()
		data, err := wirecodec.Encode(def)
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		key := layout.DefinitionKey(def.Name, def.Version)
		if _, err := kv.Create(ctx, key, data); err != nil {
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
		}
		if _, err := kv.PutString(ctx, layout.LatestDefinitionKey(def.Name), def.Version); err != nil {
			return fmt.Errorf("worker: register latest %s: %w", def.Name, err)
		}
		w.log.Info("workflow registered", "workflow", def.Name, "version", def.Version)
	}
	return nil
}
