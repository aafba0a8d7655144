//go:build !canofaults

package app

import (
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// Without the canofaults build tag (every shipped binary) the demo worker
// hosts no fault-injection tasks; see package internal/wire/faults.

func builtinExtra(*fsm.Registry) []worker.Definer { return nil }
