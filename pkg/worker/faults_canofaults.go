//go:build canofaults && unix

package worker

import (
	"fmt"
	"os"
	"syscall"
)

// faultEnv names the fault a worker built with the canofaults tag (the
// fault suite's build, test/fault) injects. "kill-after-result-sent": the
// process SIGKILLs itself once it has sent its first result request, before
// the coordinator's answer settles it — the command stays unacknowledged
// and is redelivered (resultrpc.go).
const faultEnv = "CANO_FAULT_WORKER"

func faultAfterResultSent() func(rc *resultCalls, token uint64) {
	if os.Getenv(faultEnv) != "kill-after-result-sent" {
		return nil
	}
	return func(rc *resultCalls, token uint64) {
		rc.mu.Lock() // never released: no answer settles a call from here on
		call := rc.calls[token]
		if call == nil {
			// Answered already (an answer takes a record write, the flush
			// below a round trip): no fault this time.
			rc.mu.Unlock()
			return
		}
		_ = rc.w.nc.Flush() // the request reached the server
		// Read by the fault suite: the point was reached.
		fmt.Fprintf(os.Stderr, "canofaults: result request of run %s sent; SIGKILL before its answer\n", call.cmd.RunID)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal ends the process
	}
}
