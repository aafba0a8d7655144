// Package fsm is what workflows are written against. A workflow is a finite
// state machine whose states run tasks; this package gives you:
//
//   - the typed builder: [New], then [Workflow.Register] for a state that
//     runs one task, [Workflow.RegisterSplit] for parallel tasks joined by
//     a strategy (package join), [Workflow.OnFailure] for compensation,
//     [Workflow.Exit], [Workflow.TotalTimeout] and [Workflow.Version];
//   - tasks: the [Task] interface (a stable kind name plus Run), [TaskFunc]
//     for a plain function, and [Node] for cano's prep → exec → post
//     lifecycle; a task reads its run through [TaskContext] and returns a
//     [Result] built with [Next], [NextWith] or [SplitInto];
//   - per-state configuration: [TaskConfig] (retries with [RetryExponential],
//     [RetryFixed] or [RetryNone], the attempt timeout, a shared circuit
//     breaker) and [JoinConfig] (join strategy, join state, timeout,
//     bulkhead);
//   - the [Registry], which tells a worker how to rebuild and run each task
//     kind: [Register] one type per kind, or [Registry.RegisterTask] one
//     value (a [TaskFunc]);
//   - the errors a run fails with, and [Permanent] to stop retrying.
//
// A worker (package worker) hosts the registry and registers the
// workflows; a coordinator (package coordinator) runs them; a client
// (package client) triggers runs and reads their outcome.
//
// # Defining
//
// States are the user's own string type; the builder is typed on it, so a
// state of another type does not compile. A [Task] is a value with a stable
// kind name whose fields are its parameters (msgpack-encoded into the
// definition). [Node] gives cano's prep → exec → post lifecycle.
//
//	wf := fsm.New[OrderState]("order", Validate).
//		Register(Validate, ValidateOrder{}).
//		Register(Charge, ChargeCard{Gateway: "stripe"}, fsm.TaskConfig{Retry: fsm.RetryExponential(5)}).
//		RegisterSplit(Ship, []fsm.Task{Pack{}, Label{}}, fsm.JoinConfig[OrderState]{
//			Strategy: join.All(), JoinState: Done, Timeout: time.Minute}).
//		Exit(Done, Rejected).
//		TotalTimeout(10 * time.Minute)
//
// [Workflow.Validate] applies cano's validate() rules (handlers, exit
// states, join states, join configuration) plus ours: a valid initial
// state, Quorum/PartialResults not above the branch count, valid names.
//
// # Versions
//
// A workflow with no [Workflow.Version] is versioned by its content
// (12 hex digits of a hash of its canonical encoding).
// Change it — a state, a task parameter, a timeout — and redeploy: workers
// register the new version and new runs use it, while runs already
// started finish on the version they were pinned to. An explicit version
// must keep its content; bump it when the workflow changes. Old versions
// are listed and deleted with the client (Workflows, DeleteWorkflowVersion).
//
// # Passing data between states
//
// A task hands a value to the next state with [NextWith]; the next state's
// task reads it with [TaskContext.Previous] (and the run's input with
// [TaskContext.Input]). The value is kept in the run record, so it survives
// restarts; its encoding counts against the result's payload limit. A
// split's branches each return their own output, which the join state
// reads with [TaskContext.Branches] and [BranchOutput].
//
//	func (Price) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
//		var order Order
//		if err := tc.Previous(&order); err != nil {
//			return fsm.Result{}, err
//		}
//		order.Total = order.Qty * order.UnitPrice
//		return fsm.NextWith(Charge, order), nil
//	}
//
// # Running
//
// Hand the registry and the workflows to a worker:
//
//	reg := &fsm.Registry{}
//	fsm.Register[ValidateOrder](reg)
//	fsm.Register[ChargeCard](reg)
//	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{wf}})
//
// Runs are capped at [Workflow.MaxTransitions] state entries (default
// [MaxTransitionsDefault]). Unit-test a task by calling its Run with a
// context from package fsmtest; test a whole workflow with package
// canotest. The engine that applies the transitions is internal to the
// module.
//
// # Run lifecycle
//
// A run's status moves as below (a Mermaid stateDiagram-v2; paste it into
// any Mermaid renderer to draw it):
//
//	stateDiagram-v2
//	    [*] --> running: trigger (initial state registered)
//	    [*] --> completed: trigger (initial state is an exit)
//	    [*] --> scheduled: trigger with a later start (client.TriggerOpts.StartAt)
//	    scheduled --> running: start time reached
//	    scheduled --> cancelled: cancel request before the start
//	    running --> running: task result names a registered state / split joined
//	    running --> completed: exit state reached
//	    running --> failed: task failed · unregistered state · join failed · workflow timeout · transition cap
//	    running --> cancelled: cancel request (wins over a later timeout)
//	    completed --> [*]
//	    failed --> [*]
//	    cancelled --> [*]
//
// # Errors
//
// Every run failure matches one of cano's categories ([ErrTaskExecution],
// [ErrWorkflow], [ErrConfiguration], [ErrRetryExhausted], [ErrTimeout],
// [ErrWorkflowTimeout], [ErrCancelled], [ErrCircuitOpen], [ErrStore]) with
// errors.Is, and carries its state context as a [*StateError]; the
// category, message and cause chain survive the trip over the wire, so a
// client sees the same types. A task returns
// [Permanent](err) to skip its remaining attempts. As in cano, a split whose
// join timeout passes before its strategy is decided fails with
// [ErrWorkflow] ("split task timeout exceeded"), not [ErrTimeout], which is
// a task attempt's own timeout; a whole run's total timeout is
// [ErrWorkflowTimeout].
package fsm
