// Package coordinator is the generic coordinator: it holds no user code.
// Every replica consumes triggers, task results, timer fires and cancel
// requests from shared durable consumers, applies the pure transition
// function of package fsm, writes the run record with compare-and-set,
// publishes the resulting commands, and only then acknowledges the input
// (the crash rule). Any number of coordinators run together; per-run
// consistency comes from the KV revision, and within one process each run
// is handled by one shard goroutine (hash of the run id), so replicas of
// the same process never fight over a record.
//
// # Life of an input
//
//	decode ─▶ load record (cache, else KV) ─▶ engine.Apply ─▶ KV Update(rev)
//	   │                                         │ conflict: re-read, re-apply
//	   └─ bad: dead-letter + Term                 ▼
//	                           publish commands/timers (async, de-duplicated)
//	                           publish notices/events (core NATS)
//	                           ─▶ ack the input when the publishes are acknowledged
//
// An input that changes nothing (a duplicate, a late result) and meets a
// run still going re-publishes what the record owes ([engine.Owed]),
// de-duplicated by the broker, whatever its delivery count: the count is
// lost when a server is killed, and a run must not depend on it.
//
// # Trigger requests
//
// Triggers also arrive as core NATS requests (protocol.Names.RPCTriggerSubject,
// queue group [RequestQueueGroup], at most Config.MaxRequests in hand): the
// first command is stored before the record is created, and carries what
// the record is made of, so that its result can create the record when the
// coordinator died in between; the reply is sent once the record is
// written. Runs that cannot start that way are forwarded to the triggers
// stream. The crash points are walked in requests.go. With
// Config.DeferStart the record is instead written together with the run's
// first input, and the reply sent then (deferred.go).
//
// # Result requests
//
// Workers send results as core NATS requests to the coordinator that
// published the command (protocol.Names.RPCResultSubject, this
// coordinator's id on its commands in protocol.HeaderCoordinator), or to
// any coordinator (protocol.Names.RPCResultAnySubject, queue group
// [RequestQueueGroup]). A result request is handled as a stored result and
// answered once what the run owes is stored; the worker's un-acknowledged
// command is the durable input. At most Config.MaxRequests are in hand; one
// over it, and one whose handling failed, is answered with
// protocol.HeaderResultError and reaches a coordinator again through the
// results stream. The crash points are walked in resultrpc.go.
//
// # Stalled runs and failing inputs
//
// Each shard checks the runs it caches every Config.StallCheckInterval: a
// run whose record has not moved for longer than its step can take is
// re-read and, if unchanged, what it owes is re-published ([Stats].Stalled
// counts these). An input whose handling fails is handed back with a delay
// that doubles from [NakDelayMin] to [NakDelayMax]; after
// Config.MaxDeliveries failures it is dead-lettered with its last error.
// The same warning is logged at most once per Config.WarnInterval.
//
// # The tasks stream's anchor
//
// Every coordinator keeps a small message with a TTL in the tasks stream
// (anchor.go), so that acknowledgements that drain the work queue do not
// make the server's file store replace its last block file per task.
package coordinator
