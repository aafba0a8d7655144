//go:build canofaults

package app

import (
	"github.com/cano-nats/cano/internal/wire/faults"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// Built with -tags canofaults (the fault suite's cmd/worker): the
// fault-injection tasks and workflows join the demo worker.

func builtinExtra(reg *fsm.Registry) []worker.Definer { return faults.Install(reg) }
