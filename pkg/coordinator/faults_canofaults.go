//go:build canofaults && unix

package coordinator

import (
	"fmt"
	"os"
	"syscall"
)

// faultEnv names the fault a coordinator built with the canofaults tag (the
// fault suite's build, test/fault) injects:
//
//   - "kill-after-first-command": the process SIGKILLs itself in the
//     request fast path once the run's first command is stored and before
//     its record is written — the crash point the command's start echo
//     covers (requests.go);
//   - "kill-after-result-record": the process SIGKILLs itself once it has
//     written a run's record for a result that came as a request, before it
//     publishes what the run owes and before it answers — the crash point
//     the worker's request timeout and the resent result cover
//     (resultrpc.go);
//   - "kill-after-scheduled-record": the process SIGKILLs itself once it
//     has created the record of a run triggered to start later, before it
//     publishes the run's start timer and acknowledges the trigger — the
//     crash point the trigger's redelivery covers (the record owes its
//     start timer: engine.Owed).
const faultEnv = "CANO_FAULT_COORDINATOR"

func faultAfterCommands() func(runID string) bool {
	if os.Getenv(faultEnv) != "kill-after-first-command" {
		return nil
	}
	return func(string) bool {
		kill()
		return false
	}
}

func faultAfterRecord() func(applied []job) {
	if os.Getenv(faultEnv) != "kill-after-result-record" {
		return nil
	}
	return func(applied []job) {
		for _, j := range applied {
			if rm, ok := j.msg.(*requestMsg); ok && rm.result {
				// Read by the fault suite: the point was reached.
				fmt.Fprintf(os.Stderr, "canofaults: record of run %s written for a result request; SIGKILL before publishing what it owes and answering\n", j.runID)
				kill()
			}
		}
	}
}

func faultAfterStartRecord() func(runID string) {
	if os.Getenv(faultEnv) != "kill-after-scheduled-record" {
		return nil
	}
	return func(runID string) {
		fmt.Fprintf(os.Stderr, "canofaults: record of scheduled run %s written; SIGKILL before publishing its start timer\n", runID)
		kill()
	}
}

// kill ends the process with SIGKILL: nothing after it runs.
func kill() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal ends the process
}
