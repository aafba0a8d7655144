// Package coordinator runs workflow runs. A coordinator holds no user code:
// it takes triggers (from package client, the scheduler, or a plain NATS
// request or publish), starts the runs, sends each state's task to the
// workers, takes their results, moves each run to its next state or ends
// it, and applies its timeouts and cancel requests, keeping every run's
// record in JetStream KV. Run as many coordinators as you like, in as many
// processes: they share the work, and the inputs of one that dies go to
// the others. Task code runs in workers (package worker).
//
// cmd/coordinator is a ready-made binary. To run a coordinator in your own
// process, create it on a NATS connection and start it:
//
//	co, err := coordinator.New(nc, coordinator.Config{
//		Provision: &provision.Config{}, // create the streams and buckets on Start
//	})
//	if err != nil {
//		return err
//	}
//	if err := co.Start(ctx); err != nil {
//		return err
//	}
//	// … until shutdown:
//	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//	defer cancel()
//	return co.Stop(sctx)
//
// The zero [Config] uses the defaults; each field documents its own.
// [New] does not connect, and [Coordinator.Stop] does not close nc: the
// connection stays yours. [Coordinator.Start] returns once the coordinator
// consumes its inputs; without Config.Provision the streams and buckets
// must already exist (provision.Ensure, or another process created them).
// [Coordinator.Stop] finishes the inputs in hand within its context and
// leaves the rest to be redelivered to another coordinator.
//
// # How it works
//
// Every coordinator reads the same shared durable consumers (triggers,
// task results, timer fires, cancel requests) and answers trigger and
// result requests in the queue group [RequestQueueGroup]. For each input it
// computes the run's next step, writes the run record with compare-and-set
// on its KV revision, publishes what the step needs (task commands,
// durable timers; de-duplicated by the broker), and only then acknowledges
// the input. A process killed between any two of these leaves an input
// that is redelivered, and the coordinator that takes it publishes again
// what the record still owes (the broker drops the duplicates), so the run
// goes on whichever process died.
// Within a process each run is handled by one shard goroutine; across
// processes the KV revision decides. A run whose record stops moving is
// re-driven ([Stats].Stalled), and an input that keeps failing is
// dead-lettered after Config.MaxDeliveries. The repository's
// docs/architecture.md describes this in full.
package coordinator
