package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// definitions mirrors the definitions bucket: compiled machines by name and
// version, and the latest version of each workflow.
type definitions struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu       sync.RWMutex
	machines map[string]*fsm.Machine // guarded by mu; key name "@" version
	latest   map[string]string       // guarded by mu; name → version
}

func newDefinitions(kv jetstream.KeyValue, log *slog.Logger) *definitions {
	return &definitions{kv: kv, log: log, machines: map[string]*fsm.Machine{}, latest: map[string]string{}}
}

// start watches the bucket and returns once the initial values are loaded.
func (d *definitions) start(ctx, runCtx context.Context) error {
	w, err := d.kv.WatchAll(runCtx)
	if err != nil {
		return fmt.Errorf("coordinator: watch definitions: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		defer w.Stop()
		once := false
		for {
			select {
			case <-runCtx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					if !once {
						once = true
						close(ready)
					}
					continue
				}
				if e.Operation() == jetstream.KeyValuePut {
					d.apply(e.Key(), e.Value())
				}
			}
		}
	}()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("coordinator: loading definitions: %w", ctx.Err())
	}
}

func (d *definitions) apply(key string, value []byte) {
	switch {
	case strings.HasPrefix(key, "latest."):
		d.mu.Lock()
		d.latest[strings.TrimPrefix(key, "latest.")] = string(value)
		d.mu.Unlock()
	case strings.HasPrefix(key, "def."):
		if _, err := d.compile(value); err != nil {
			d.log.Warn("ignoring invalid definition", "key", key, "err", err)
		}
	}
}

func (d *definitions) compile(value []byte) (*fsm.Machine, error) {
	var def protocol.Definition
	// Definitions are values of our own bucket (bounded by its maximum
	// value size), not untrusted input: allow large static splits.
	if err := protocol.Decode(value, &def, maxDefinitionSize); err != nil {
		return nil, err
	}
	m, err := fsm.Compile(&def)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.machines[def.Name+"@"+def.Version] = m
	d.mu.Unlock()
	return m, nil
}

const maxDefinitionSize = 64 << 20

var errUnknownWorkflow = errors.New("unknown workflow")

// machine returns the machine of name at version ("" = latest), reading the
// bucket when the watch has not delivered it yet.
func (d *definitions) machine(ctx context.Context, name, version string) (*fsm.Machine, error) {
	d.mu.RLock()
	if version == "" {
		version = d.latest[name]
	}
	m := d.machines[name+"@"+version]
	d.mu.RUnlock()
	if m != nil {
		return m, nil
	}
	if version == "" {
		e, err := d.kv.Get(ctx, protocol.LatestDefinitionKey(name))
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil, fmt.Errorf("%w: %w %q: no worker has registered it", fsm.ErrConfiguration, errUnknownWorkflow, name)
			}
			return nil, err
		}
		version = string(e.Value())
		d.mu.Lock()
		d.latest[name] = version
		d.mu.Unlock()
	}
	e, err := d.kv.Get(ctx, protocol.DefinitionKey(name, version))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: %w %q version %q", fsm.ErrConfiguration, errUnknownWorkflow, name, version)
		}
		return nil, err
	}
	return d.compile(e.Value())
}
