//go:build !canofaults || !unix

package worker

// faultAfterResultSent is the fault hook after a result request is sent
// (resultrpc.go): none in shipped builds. See faults_canofaults.go.
func faultAfterResultSent() func(rc *resultCalls, token uint64) { return nil }
