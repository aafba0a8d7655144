package fsm

import (
	"github.com/cano-nats/cano/internal/fsmbridge/hooks"
	"github.com/cano-nats/cano/pkg/protocol"
)

// The engine (pkg/worker, pkg/coordinator, pkg/client) reaches what this
// package keeps unexported through internal/fsmbridge, whose hooks are set
// here. Nothing outside the module can reach them.
func init() {
	hooks.NewTaskContext = func(p hooks.TaskContext) any { return newTaskContext(p) }
	hooks.SplitSpec = func(res any) (*protocol.SplitSpec, error) { return res.(Result).splitSpec() }
	hooks.BuildTask = func(reg any, spec *protocol.TaskSpec) (any, error) { return reg.(*Registry).build(spec) }
	hooks.ErrorInfo = errorInfo
	hooks.FromErrorInfo = fromErrorInfo
}
