// Package kvstore gives workers their shared resources and tasks a typed
// key/value store that works across processes: Cano's Resources and
// MemoryStore, rebuilt on NATS JetStream KV. This package imports nothing
// from NATS: the JetStream implementation is package natskv.
//
// # Resources
//
// A [Resources] registry holds a worker's [Resource]s (database pools, HTTP
// clients, breakers, the store) under string keys. [Resources.Insert]
// panics on a duplicate key ([Resources.InsertSafely] returns
// [ErrDuplicateKey]); [Get] looks one up with its type, returning
// [ErrResourceNotFound] or [ErrResourceTypeMismatch]. [Resources.SetupAll]
// sets them up in insertion order and, if one fails, tears down the ones it
// set up in reverse order and returns a [*SetupError] naming the key;
// [Resources.TeardownAll] tears down in reverse order, logging errors
// without stopping. Resources that implement [ResourceWithHealth] report
// [Healthy], [Degraded] or [Unhealthy]; [Resources.Health] aggregates them,
// worst wins.
//
// # Store
//
// [Store] is the interface tasks use: Get, Put, Append, Delete, Keys and
// Watch on byte values, with the typed helpers [GetAs], [PutValue],
// [AppendValue] and [Decode] that encode values with msgpack. A value that
// does not decode into the requested type gives [ErrTypeMismatch], never a
// panic.
//
// natskv.Store (package pkg/kvstore/natskv) is the implementation every
// process uses: a JetStream KV bucket (<prefix>_store, created
// by provision.Ensure); pkg/worker builds it for its tasks. [Memory] is an
// in-process implementation for unit tests. Both pass the conformance suite
// in package kvstoretest.
//
// Append adds one msgpack item to the msgpack array under a key, atomically
// across goroutines and processes: natskv runs a compare-and-set loop on the
// key's revision (conflicts are detected with
// jetstream.ErrKeyRevisionMismatch and retried until the deadline, then
// reported as [ErrConflict]), and batches concurrent Appends of one process
// into one write.
//
// # Limits
//
// Keys follow NATS KV rules: letters, digits, '-', '/', '_', '=' and '.'
// (not first or last, never doubled), at most [MaxKeyLen] bytes including
// the scope prefix; anything else is [ErrInvalidKey]. A value larger than
// the bucket's maximum value size (for Append, the array after the append)
// is refused with [ErrValueTooLarge]: values are never chunked. Keep large
// payloads elsewhere (an object store) and put a reference in the store.
//
// # Scopes
//
// The key space is split into scopes: [GlobalScope] ("g."), per workflow
// [WorkflowScope] ("wf.<name>.") and per run [RunScope] ("run.<id>.").
// [Scoped] returns a [View], a Store whose keys are relative to its scope;
// a task receives the view of its run. Per-run keys outlive the run so
// that its last states and clients can read them; the coordinator deletes
// them a configurable time after the run ends, from a durable timer.
//
//	run := kvstore.Scoped(store, kvstore.RunScope(runID))
//	_ = kvstore.AppendValue(ctx, run, "sources", fetched)
//	sources, err := kvstore.GetAs[[]Source](ctx, run, "sources")
package kvstore
