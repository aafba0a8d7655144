// Package scheduler runs cron, interval and manual flows across a cluster:
// every process may run a [Scheduler], one of them is elected leader (a KV
// lease, see internal/leader) and fires the flows, and each slot starts
// exactly one run.
//
// # Flows
//
// A [Flow] names a workflow, an initial state, an input and a [Schedule]:
// [Cron] (6 fields with seconds as cano, the standard 5 fields, or
// descriptors such as "@hourly" and "@every 5s"; optional time zone with
// [CronIn]), [Every] (runs at once, then waits the interval after each run
// ends) or [Manual] (runs only on [Client.Trigger]). Flows live in the
// schedules bucket; [Client] adds, updates, removes, triggers and resets them
// from any process at run time, pauses and resumes them, and a flow file ([LoadFlowFile],
// Config.FlowFile) seeds them at start.
//
// # Semantics (cano §2.11)
//
//   - A flow never overlaps itself: a cron slot reached while the previous
//     run is still running is skipped and counted (FlowInfo.SkippedFires).
//   - After a failed run the flow backs off ([BackoffPolicy]: 1 s, ×2, at
//     most 5 min, jitter 0.1) and trips after StreakLimit consecutive
//     failures; a tripped flow does not run until [Client.Reset]. A manual
//     trigger bypasses backoff but not a trip. A cancelled run is not a
//     failure.
//   - [Client.Pause] stops a flow's schedule (durably: the pause is in the
//     flow's status record, so it holds across leader changes and
//     restarts); a run in progress goes on, and, as with Temporal's schedule
//     pause, a manual trigger still runs a paused flow. [Client.Resume]
//     continues from the next scheduled time after the resume and never
//     fires slots missed while paused, whatever the misfire policy.
//   - Misfire policy per cron flow: [MisfireSkip] forgets slots missed while
//     no leader was firing; [MisfireCatchUp] runs the latest one once.
//
// # Exactly once per slot
//
// Before publishing, the leader reserves the flow by writing its status with
// compare-and-set (Running, current run id, last slot), so two leaders that
// overlap during a failover cannot both reserve a slot. The trigger's run id
// and Nats-Msg-Id derive from flow and slot (flow-<flow>-<slot>) and the
// coordinator creates the run record with KV Create, so a re-published
// trigger starts nothing new, even outside the duplicate window. Triggers
// carry the leader's fencing epoch.
//
// # How runs end
//
// The leader subscribes to terminal run events (completed, failed,
// cancelled, and rejected triggers) and, every ReconcileInterval and at the
// start of its term, reads the run records of running flows, so a missed
// event or a leader change loses nothing.
//
// # Status
//
// FlowInfo.Status follows this diagram:
//
//	stateDiagram-v2
//	    [*] --> Idle
//	    Idle --> Running: fire / trigger
//	    Completed --> Running: fire / trigger
//	    Backoff --> Running: fire after next eligible / trigger
//	    Running --> Completed: run completed
//	    Running --> Backoff: run failed, streak < limit
//	    Running --> Tripped: run failed, streak >= limit
//	    Running --> Idle: run cancelled
//	    Backoff --> Idle: reset
//	    Tripped --> Idle: reset
package scheduler
