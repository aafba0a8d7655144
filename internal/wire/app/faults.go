//go:build canofaults

package app

import (
	"github.com/cano-nats/cano/internal/wire/faults"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// Built with -tags canofaults (the fault suite's cmd/worker): the
// fault-injection tasks and workflows join the demo worker.

func registerFaults(reg *fsm.Registry) { faults.RegisterFaults(reg) }

func faultWorkflows() []worker.Definer {
	return []worker.Definer{faults.Flaky(), faults.Guarded()}
}
