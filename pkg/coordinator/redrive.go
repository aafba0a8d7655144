package coordinator

import "github.com/cano-nats/cano/pkg/protocol"

// redrives reports whether an input that changed nothing (a duplicate
// trigger, a late or duplicate result, a stale timer) re-publishes what the
// record it met owes ([engine.Owed]) before it is acknowledged.
//
// It does whenever the run is still going, whatever the input's delivery
// count says. The count is not something a run may depend on: a server
// SIGKILLed before it persisted a consumer's delivery state hands an input
// back with NumDelivered == 1 although its first handling wrote the record
// and lost the publishes. Such a duplicate is then the only thing left that
// can drive the run on.
//
// Cost: duplicates are rare on the hot path (a re-sent trigger, a result
// published twice by a worker that crashed between publishing and acking,
// the late results of a split's cancelled losers). Each costs one publish of
// the current step's commands and timers, de-duplicated by the broker
// (Nats-Msg-Id run/step/branch, timers replace the schedule on their
// subject), and one PubAck round trip before the input is acknowledged.
//
// Why it cannot loop: a re-publish creates no new input while the
// de-duplication window holds. After the window, a command still being
// executed is delivered a second time; its task runs twice (at least once,
// as after any worker crash), and of its two results one applies and the
// other changes nothing, whose re-publish is of the step after it. So each
// duplicate input costs at most one extra execution per step, only while
// steps outlast the window, and the chain ends with the run: a terminal
// record re-publishes (its final event and purge timer) only for a
// redelivered input, as before, so late results of an ended run cost nothing.
func redrives(j job, rec *protocol.RunRecord) bool {
	return j.redelivered || !rec.Status.Terminal()
}
