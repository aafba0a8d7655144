// Package internal documents the layout of the module's internal packages;
// it holds no code.
//
// internal/ has two floors, so the tree shows which way imports go:
//
//   - internal/* (the lower floor): helpers the public packages import.
//     They import nothing from pkg/ but the leaf packages pkg/protocol and
//     pkg/join (fsmbridge, which exists to reach pkg/fsm, and breakerkv,
//     which stores pkg/breaker's states, and kvpurge, which works on a
//     pkg/kvstore.Store, excepted):
//     engine (the pure transition function, run history, retry maths),
//     joinrule (the pure decision of a split's join), fsmbridge (the
//     engine's way into pkg/fsm's unexported parts), kvcore (what every
//     kvstore.Store implementation shares), connwatch, deadline (the
//     default timeout of a context without one; one call shared by callers
//     that each wait only until their own deadline), dlq, kvcas (a lost KV
//     compare-and-set, recognised in one place), kvread, kvwatch, leader,
//     prom (what the components' Prometheus metrics share), retry,
//     startstop (the one start/stop pattern of the long-running
//     components), wirecodec (the codec of pkg/protocol's messages and
//     values), breakerkv (pkg/breaker's shared KV store, listing and
//     reset), kvpurge (deletes a finished run's store keys) and layout
//     (stream, bucket and consumer names, bucket keys, message and run
//     ids). The test helpers natstest and proctest
//     live here too; only tests import them (natstest starts servers with
//     pkg/embedded and pkg/provision). internal/tools holds developer
//     commands (exportcount).
//   - internal/wire/* (the upper floor): wiring that assembles pkg/ into
//     programs: app (the coordinator and worker processes), cli (flags,
//     environment, logging), demo (the demo workflows), bench (the load
//     generator), provisioning (provision.Ensure retried, and re-run after
//     reconnects) and faults (the fault suite's tasks, compiled in only with
//     the canofaults build tag). Only cmd/, test/ and tests import them;
//     nothing in pkg/ or on the lower floor does (depguard in
//     .golangci.yaml checks it).
package internal
