// Package worker hosts task code. A worker registers its workflow
// definitions in KV on start, then pulls task commands for the kinds it
// implements — one durable consumer per queue and kind, shared by every
// worker of that kind — and runs them with bounded concurrency.
//
// Per command: check the cancel list and the shared circuit breaker, run
// the task under the per-attempt timeout (a context deadline; a task that
// ignores its context is abandoned and its late result discarded), keep the
// message alive with in-progress heartbeats, and then either publish the
// result and acknowledge, or schedule the next attempt with the retry
// policy's delay (NakWithDelay). The attempt number is the broker's
// delivery count, so a worker crash mid-retry neither resets nor skips
// attempts and the next attempt may run on any worker. Panics become
// task-execution errors and are not retried, as in cano.
//
// A started worker keeps a presence entry (protocol.WorkerInfo: id, host,
// kinds, queues, concurrency, tasks in flight, health) in the workers
// bucket, refreshed every Config.PresenceInterval and deleted on Stop; the
// bucket's TTL removes the entry of a worker that died. client.Client.Workers
// lists them.
package worker
