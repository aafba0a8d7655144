//go:build !canofaults || !unix

package coordinator

// faultAfterCommands is the request fast path's fault hook (requests.go):
// none in shipped builds. See faults_canofaults.go.
func faultAfterCommands() func(runID string) bool { return nil }

// faultAfterRecord is the fault hook after a run's record write
// (shard.go): none in shipped builds. See faults_canofaults.go.
func faultAfterRecord() func(applied []job) { return nil }

// faultAfterStartRecord is the fault hook after a scheduled run's record
// is created (shard.go): none in shipped builds. See faults_canofaults.go.
func faultAfterStartRecord() func(runID string) { return nil }
