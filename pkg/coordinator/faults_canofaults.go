//go:build canofaults && unix

package coordinator

import (
	"os"
	"syscall"
)

// faultEnv names the fault a coordinator built with the canofaults tag (the
// fault suite's build, test/fault) injects. "kill-after-first-command":
// the process SIGKILLs itself in the request fast path once the run's
// first command is stored and before its record is written — the crash
// point the command's start echo covers (requests.go).
const faultEnv = "CANO_FAULT_COORDINATOR"

func faultAfterCommands() func(runID string) bool {
	if os.Getenv(faultEnv) != "kill-after-first-command" {
		return nil
	}
	return func(string) bool {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal ends the process
	}
}
