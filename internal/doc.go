// Package internal documents the layout of the module's internal packages;
// it holds no code.
//
// internal/ has two floors, so the tree shows which way imports go:
//
//   - internal/* (this floor): helpers the public packages import. They
//     import nothing from pkg/ except the leaf packages pkg/protocol and
//     pkg/join (and internal/fsmbridge, which exists to reach pkg/fsm).
//     engine (the pure transition function, run history, retry maths),
//     fsmbridge (the engine's way into pkg/fsm's unexported parts), kvcore
//     (what every kvstore.Store implementation shares), joinrule (the pure
//     decision of a split's join), connwatch, dlq,
//     kvread, kvwatch, leader, retry; and the test helpers natstest and
//     proctest, imported only by tests.
//   - internal/wire/*: wiring that assembles pkg/ into programs: app (the
//     coordinator and worker processes), cli (flags, environment, logging),
//     demo (the demo workflows), bench (the load generator), faults (the
//     fault suite's tasks, compiled in only with the canofaults build tag).
//     Only cmd/, test/ and tests import them; nothing in pkg/ or on the
//     floor above does (depguard in .golangci.yaml checks it).
package internal
