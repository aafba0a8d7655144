// Package faults holds the fault-injection tasks and workflows of the fault
// suite (test/fault): a call that fails a set number of times or crashes
// its worker process, and a call guarded by a circuit breaker that fails
// until released. They do not ship in cmd/worker: internal/wire/app
// registers them only when built with the "canofaults" build tag, which
// test/fault passes when it builds cmd/worker (proctest.BuildTagged).
package faults
