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
//	decode ─▶ load record (cache, else KV) ─▶ fsm.Apply ─▶ KV Update(rev)
//	   │                                         │ conflict: re-read, re-apply
//	   └─ bad: dead-letter + Term                 ▼
//	                           publish commands/timers (async, de-duplicated)
//	                           publish notices/events (core NATS)
//	                           ─▶ ack the input when the publishes are acknowledged
//
// A redelivered input (NumDelivered > 1) that finds the record already
// applied re-publishes what the record owes ([fsm.Owed]).
package coordinator
