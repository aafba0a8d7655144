package wirecodec

import (
	"reflect"

	"github.com/cano-nats/cano/pkg/protocol"
)

// The hand-written codecs (fast.go, fast_record.go, fast_trigger.go) know their types'
// fields. The msgpack tags of those types are checked against that
// knowledge once, at start: a type whose fields changed (a field added,
// renamed, moved or made omitempty) without its codec is encoded and
// decoded reflectively, never with a field left out; and
// TestFastCodecMatchesReflection fails until the codec catches up.
var (
	fastTaskCommand = tagsAre(protocol.TaskCommand{}, "v", "run_id", "workflow", "state", "step", "branch", "task",
		"deadline,omitempty", "input,omitempty", "input_format,omitempty", "input_in_record,omitempty",
		"previous,omitempty", "previous_in_record,omitempty", "path,omitempty", "join_of,omitempty",
		"join_branches,omitempty", "start,omitempty") && fastRunStart &&
		tagsAre(protocol.TaskSpec{}, "kind", "params,omitempty", "retry", "attempt_timeout,omitempty",
			"breaker,omitempty", "breaker_policy,omitempty") &&
		tagsAre(protocol.RetryPolicy{}, "mode", "max_retries,omitempty", "base_delay,omitempty",
			"multiplier,omitempty", "max_delay,omitempty", "jitter,omitempty") &&
		tagsAre(protocol.BreakerPolicy{}, "failure_threshold", "reset_timeout", "half_open_max_calls")
	fastRunStart = tagsAre(protocol.RunStart{}, "workflow,omitempty", "initial_state,omitempty", "def_version",
		"input,omitempty", "input_format,omitempty", "idempotency_key,omitempty", "flow,omitempty",
		"slot,omitempty", "created_at")
	fastErrorInfo = tagsAre(protocol.ErrorInfo{}, "category", "message", "attempts,omitempty", "state,omitempty",
		"path,omitempty", "cause,omitempty")
	fastTaskResult = fastErrorInfo && tagsAre(protocol.TaskResult{}, "v", "run_id", "step", "branch", "status",
		"next,omitempty", "output,omitempty", "error,omitempty", "attempts,omitempty", "split,omitempty",
		"worker,omitempty", "store_used,omitempty", "attempt_started,omitempty", "attempt_duration,omitempty", "start,omitempty") && fastRunStart
	fastTrigger = tagsAre(protocol.Trigger{}, "v", "workflow", "initial_state,omitempty", "def_version,omitempty",
		"input,omitempty", "input_format,omitempty", "idempotency_key,omitempty", "run_id,omitempty",
		"flow,omitempty", "slot,omitempty", "epoch,omitempty", "start_at,omitempty")
	fastTriggerReply = fastErrorInfo && tagsAre(protocol.TriggerReply{}, "v", "run_id,omitempty", "error,omitempty",
		"existing,omitempty", "retry,omitempty")
	fastRunRecord = fastErrorInfo && tagsAre(protocol.RunRecord{}, "v", "id", "workflow", "def_version", "status",
		"state", "step", "path", "input,omitempty", "input_format,omitempty", "output,omitempty",
		"error,omitempty", "created_at", "updated_at", "deadline,omitempty", "start_at,omitempty", "cancel_requested,omitempty",
		"idempotency_key,omitempty", "flow,omitempty", "slot,omitempty", "split,omitempty", "join_of,omitempty",
		"join_branches,omitempty", "store_used,omitempty", "history,omitempty", "totals") &&
		tagsAre(protocol.Step{}, "seq", "state", "kind", "entered", "left,omitempty", "outcome,omitempty",
			"attempts,omitempty", "worker,omitempty", "attempt_started,omitempty", "attempt_duration,omitempty",
			"error,omitempty", "split,omitempty") &&
		tagsAre(protocol.SplitSummary{}, "strategy", "required,omitempty", "dynamic,omitempty", "total",
			"succeeded,omitempty", "failed,omitempty", "timed_out,omitempty", "cancelled,omitempty",
			"decision,omitempty", "join_timeout,omitempty") &&
		tagsAre(protocol.RunTotals{}, "steps,omitempty", "dropped,omitempty", "attempts,omitempty",
			"failed_attempts,omitempty", "failed_tasks,omitempty")
)

// tagsAre reports whether v's struct fields are exactly the exported
// fields with these msgpack tags, in this order.
func tagsAre(v any, tags ...string) bool {
	t := reflect.TypeOf(v)
	if t.NumField() != len(tags) {
		return false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous || f.Tag.Get("msgpack") != tags[i] {
			return false
		}
	}
	return true
}
