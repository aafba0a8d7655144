// Package worker hosts task code. A worker runs the tasks of the kinds in
// its [fsm.Registry]: when it starts it registers its workflows (so that
// coordinators and clients know them), then takes the task commands the
// coordinators send for those kinds, runs each task with its retry policy,
// attempt timeout and circuit breaker, and sends the result back. Run as
// many workers as you like, in as many processes: workers of the same
// kinds share the commands, and the tasks of a worker that dies run on
// another.
//
// cmd/worker runs the demo workflows; your own workers are your own
// binaries (or part of one). Create a worker on a NATS connection with the
// registry and the workflows, and start it:
//
//	reg := &fsm.Registry{}
//	fsm.Register[ValidateOrder](reg)
//	fsm.Register[ChargeCard](reg)
//	w, err := worker.New(nc, worker.Config{
//		Registry:  reg,
//		Workflows: []worker.Definer{orderWorkflow()},
//	})
//	if err != nil {
//		return err
//	}
//	if err := w.Start(ctx); err != nil {
//		return err
//	}
//	// … until shutdown:
//	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	return w.Stop(sctx)
//
// Config.Registry is required; every other field has a default, which
// its doc states. [New] checks that the workflows use only registered
// kinds. It does not connect, and [Worker.Stop] does not close nc: the
// connection stays yours. [Worker.Start] needs the streams and buckets
// (a coordinator creates them, or set Config.Provision).
// [Worker.Stop] lets the tasks in flight finish within its context and
// hands the others back, to run on another worker. Dependencies of the
// tasks (clients, pools) go in Config.Resources, set up on Start and torn
// down on Stop.
//
// # Attempts, failover and outages
//
// The attempt number is the broker's delivery count, so a worker that
// dies mid-attempt has used that attempt, and the next one may run on any
// worker. A task's error decides what follows: nil completes it, an
// ordinary error is retried after the retry policy's delay, and
// fsm.Permanent(err) fails it at once; a panic fails it without retries,
// as in cano.
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
