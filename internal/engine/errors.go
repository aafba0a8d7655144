package engine

import (
	"errors"

	"github.com/cano-nats/cano/pkg/protocol"
)

// The sentinels the engine's errors match; pkg/fsm re-exports them as
// fsm.ErrWorkflow and fsm.ErrConfiguration (the same values).
var (
	// ErrWorkflow is fsm.ErrWorkflow.
	ErrWorkflow = errors.New("fsm: workflow")
	// ErrConfiguration is fsm.ErrConfiguration.
	ErrConfiguration = errors.New("fsm: configuration")
)

// withState wraps a wire error with state context (attempts: from
// RetryExhausted, else as given).
func withState(info *protocol.ErrorInfo, state string, attempt uint32, path []string) *protocol.ErrorInfo {
	out := *info
	out.State = state
	if out.Attempts == 0 {
		out.Attempts = attempt
	}
	out.Path = append([]string(nil), path...)
	return &out
}
