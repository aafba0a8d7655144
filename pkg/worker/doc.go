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
// policy's delay (NakWithDelay). The result is sent asynchronously, as a
// core NATS request to the coordinator that published the command
// (protocol.HeaderCoordinator), or published to the results stream when
// no coordinator takes it: the goroutine that ran the task goes on to the
// next command at once, while the finished command keeps its task slot and
// its lease until the coordinator answers that it applied the result (or
// the result's PubAck arrives) and only then is acknowledged (the result is
// applied or durable first; a refused or lost PubAck is retried as in an
// outage, below). The attempt number is the broker's
// delivery count, so a worker crash mid-retry neither resets nor skips
// attempts and the next attempt may run on any worker. Panics become
// task-execution errors and are not retried, as in cano.
//
// # Leases, failover and broker outages
//
// A command in a worker's hands is leased for Config.AckWait (default 4 s):
// one heartbeat goroutine per worker renews every held command each
// AckWait/3, from delivery until the command is acknowledged or handed
// back, so a long task keeps its command and a killed worker's commands
// run on another worker within AckWait. A worker that finished a task
// keeps its command while the broker refuses the outcome (a stream without
// a leader, a server restarting) and retries with backoff for
// Config.ResultRetry, so an outage costs no attempt; only then is the
// command handed back (a delivery, hence an attempt), and after a bounded
// number of such hand-backs it is dead-lettered. No path redelivers a
// command without bound.
//
// A started worker keeps a presence entry (protocol.WorkerInfo: id, host,
// kinds, queues, concurrency, tasks in flight, health) in the workers
// bucket, refreshed every Config.PresenceInterval and deleted on Stop; the
// bucket's TTL removes the entry of a worker that died. client.Client.Workers
// lists them.
package worker
