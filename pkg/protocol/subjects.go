package protocol

import (
	"fmt"
	"strings"
)

// PrefixDefault is the name prefix used when [Names] is built with an empty
// prefix. Two deployments sharing one NATS account use different prefixes.
const PrefixDefault = "cano"

// Names builds every subject Cano uses from one configurable prefix. No other code builds subjects by concatenation.
//
// With the default prefix "cano":
//
//	cano.trigger.<workflow>                 triggers (stream CANO_TRIGGERS)
//	cano.rpc.trigger.<workflow>             trigger requests (core NATS, queue group of coordinators)
//	cano.task.<queue>.<kind>                task commands (stream CANO_TASKS)
//	cano.result.<run>                       task results (stream CANO_RESULTS)
//	cano.control.cancel.<run>               cancel requests (stream CANO_CONTROL)
//	cano.timer.at.<run>.<name>              scheduled timers (stream CANO_TIMERS)
//	cano.timer.fire.<run>.<name>            timer fires (stream CANO_TIMERS)
//	cano.event.<workflow>.<run>.<type>      events (core NATS; captured by the optional stream CANO_EVENTS)
//	cano.dlq.<source>                       dead letters (stream CANO_DLQ)
//	cano.notice.cancel.<run>                cancel notices to workers (core NATS)
//
// The KV buckets are <prefix>_runs (run records under the run id),
// _branches (branch outcomes under <run>.<step>.<branch>, dynamic split
// specs under <run>.<step>.spec), _definitions (def.<name>.<version>,
// latest.<name>), _schedules, _breakers, _store, _workers and _leader,
// with '-' in the prefix written '_'. The stream of each subject group is
// the prefix in upper case and its name: CANO_TRIGGERS, CANO_TASKS,
// CANO_RESULTS, CANO_CONTROL, CANO_TIMERS, CANO_EVENTS, CANO_DLQ.
//
// The zero value is not useful; use [NewNames].
type Names struct {
	prefix string // e.g. "cano"
}

// NewNames returns the names for prefix. An empty prefix means [PrefixDefault].
// A prefix must be a single subject token of letters, digits, '-' and '_'.
func NewNames(prefix string) (Names, error) {
	if prefix == "" {
		prefix = PrefixDefault
	}
	if err := ValidToken(prefix); err != nil {
		return Names{}, fmt.Errorf("protocol: prefix: %w", err)
	}
	return Names{prefix: prefix}, nil
}

// MustNames is [NewNames] that panics on an invalid prefix.
func MustNames(prefix string) Names {
	n, err := NewNames(prefix)
	if err != nil {
		panic(err)
	}
	return n
}

// Prefix returns the configured prefix.
func (n Names) Prefix() string { return n.prefix }

// Trigger subjects.
func (n Names) TriggerSubject(workflow string) string { return n.prefix + ".trigger." + workflow }

// TriggerWildcard matches every trigger subject.
func (n Names) TriggerWildcard() string { return n.prefix + ".trigger.>" }

// RPCTriggerSubject is where a [Trigger] is sent as a core NATS request
// (no stream captures it): a coordinator of the queue group answers with a
// [TriggerReply] once the run is durable (JSON for a JSON request). `nats
// req cano.rpc.trigger.<workflow> '{"input":{...}}' -H
// Content-Type:application/json` shows the run id or the error.
func (n Names) RPCTriggerSubject(workflow string) string {
	return n.prefix + ".rpc.trigger." + workflow
}

// RPCTriggerWildcard matches every trigger request subject.
func (n Names) RPCTriggerWildcard() string { return n.prefix + ".rpc.trigger.>" }

// RPCResultSubject is where a worker sends a [TaskResult] as a core NATS
// request to the coordinator that published its command (the command's
// [HeaderCoordinator]). The coordinator applies it, writes the run record,
// stores what the run owes next and only then answers — with an empty
// message, or with [HeaderResultError] when it did not take the result. The
// worker acknowledges its command after the empty answer; otherwise it
// sends the result on: to [Names.RPCResultAnySubject] when nobody listens
// here, else to the results stream ([Names.ResultSubject]).
func (n Names) RPCResultSubject(coordinator string) string {
	return n.prefix + ".rpc.result." + coordinator
}

// RPCResultAnySubject takes result requests in the coordinators' queue
// group: where a worker sends a result whose coordinator is gone.
func (n Names) RPCResultAnySubject() string { return n.prefix + ".rpc.results" }

// Task subjects. Queue and kind are single tokens.
func (n Names) TaskSubject(queue, kind string) string {
	return n.prefix + ".task." + queue + "." + kind
}

// TaskWildcard matches every task subject.
func (n Names) TaskWildcard() string { return n.prefix + ".task.>" }

// Result subjects.
func (n Names) ResultSubject(runID string) string { return n.prefix + ".result." + runID }

// ResultWildcard matches every result subject.
func (n Names) ResultWildcard() string { return n.prefix + ".result.>" }

// Control subjects (cancel requests, durable).
func (n Names) CancelSubject(runID string) string { return n.prefix + ".control.cancel." + runID }

// StartNowSubject asks to start runID, a run triggered to start later, now
// (durable, on the control stream). Its body is ignored: the nats CLI's
// "nats pub cano.control.start.ID x" starts run ID now.
func (n Names) StartNowSubject(runID string) string { return n.prefix + ".control.start." + runID }

// ControlWildcard matches every control subject.
func (n Names) ControlWildcard() string { return n.prefix + ".control.>" }

// Timer subjects. The schedule message is published on TimerAtSubject with a
// Nats-Schedule header targeting TimerFireSubject.
func (n Names) TimerAtSubject(runID, name string) string {
	return n.prefix + ".timer.at." + runID + "." + name
}

// TimerFireSubject is where a timer named name of runID fires.
func (n Names) TimerFireSubject(runID, name string) string {
	return n.prefix + ".timer.fire." + runID + "." + name
}

// TimerWildcard matches every timer subject, scheduled and fired.
func (n Names) TimerWildcard() string { return n.prefix + ".timer.>" }

// TimerFireWildcard matches every timer fire subject.
func (n Names) TimerFireWildcard() string { return n.prefix + ".timer.fire.>" }

// BreakerEventWorkflow is the workflow token of breaker transition events.
// A transition of breaker name is published (core NATS, so the events
// capture stream, when there is one, keeps it) as an [Event] of type [EventBreaker] with RunID = name and
// State = the new state, on
//
//	Names.EventSubject(BreakerEventWorkflow, name, EventBreaker)
//
// that is "cano.event._breaker.<name>.breaker"; `nats sub
// 'cano.event._breaker.>'` shows every breaker moving.
const BreakerEventWorkflow = "_breaker"

// Event subjects.
func (n Names) EventSubject(workflow, runID string, typ EventType) string {
	return n.prefix + ".event." + workflow + "." + runID + "." + string(typ)
}

// EventWildcard matches every event subject.
func (n Names) EventWildcard() string { return n.prefix + ".event.>" }

// RunEventsWildcard matches every event of one run.
func (n Names) RunEventsWildcard(runID string) string {
	return n.prefix + ".event.*." + runID + ".>"
}

// Dead-letter subjects. Source names where the message came from
// ("trigger", "result", "control", "timer", "task").
func (n Names) DLQSubject(source string) string { return n.prefix + ".dlq." + source }

// DLQWildcard matches every dead-letter subject.
func (n Names) DLQWildcard() string { return n.prefix + ".dlq.>" }

// NoticeCancelSubject carries cancel notices to workers over core NATS.
func (n Names) NoticeCancelSubject(runID string) string {
	return n.prefix + ".notice.cancel." + runID
}

// NoticeCancelWildcard matches every cancel notice subject.
func (n Names) NoticeCancelWildcard() string { return n.prefix + ".notice.cancel.>" }

// ValidToken reports whether s is a usable subject token or name part:
// non-empty, at most 128 bytes, of letters, digits, '-' and '_'.
func ValidToken(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %q longer than %d bytes", ErrInvalidName, s[:16]+"…", MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %q has %q (allowed: letters, digits, '-', '_')", ErrInvalidName, s, c)
		}
	}
	return nil
}

// MaxNameLen is the longest workflow, state, kind, queue or run id accepted.
const MaxNameLen = 128

// HeaderReplyTo carries the subject a coordinator answers a trigger on (the
// JetStream reply subject is taken by the publish acknowledgement).
const HeaderReplyTo = "Cano-Reply-To"

// HeaderNewRunID, set (to any value) on a trigger request, says the
// request's run_id was generated by the sender for this request and this
// is its first sending: no run can have that id yet, so the coordinator
// skips the look-up that guards against starting an existing run's first
// step again. A retry of the request must leave it out.
const HeaderNewRunID = "Cano-New-Run-Id"

// HeaderCoordinator, on a task command, names the coordinator that
// published it (a single token): its result is sent to
// [Names.RPCResultSubject] of that name.
const HeaderCoordinator = "Cano-Coordinator"

// HeaderResultError, on the answer to a result request, says the
// coordinator did not take the result (too many in flight, a store call
// failed) and why: the worker sends the result to the results stream.
const HeaderResultError = "Cano-Error"

// HeaderResent, on a result, says an earlier sending of it may have
// reached a coordinator (its request timed out or was refused): the
// coordinator treats it as redelivered and re-publishes what the run owes
// even when the result changes nothing.
const HeaderResent = "Cano-Resent"

// JetStream's own subjects, used where nats.go's API has no call for what
// the engine needs (a KV write carrying a per-message TTL, a read the
// stream leader answers).

// KVSubject is the subject a KV bucket stores key under.
func KVSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// IsJetStreamSubject reports whether subject is JetStream's own: its API
// (any domain) or a KV bucket's key. Processes use it to tell a refused
// start step (provisioning, a definition's registration) from a task's own
// refused publish.
func IsJetStreamSubject(subject string) bool {
	return strings.HasPrefix(subject, "$JS.") || strings.HasPrefix(subject, "$KV.")
}

// JSAPIPrefix is the JetStream API prefix for a JetStream domain ("" for
// none), or apiPrefix when it is set (it is returned with one trailing dot).
func JSAPIPrefix(domain, apiPrefix string) string {
	switch {
	case domain != "":
		return "$JS." + domain + ".API."
	case apiPrefix != "":
		return strings.TrimSuffix(apiPrefix, ".") + "."
	default:
		return "$JS.API."
	}
}

// ConsumerNextSubject is the JetStream API subject of a pull consumer's
// requests for its next messages.
func ConsumerNextSubject(apiPrefix, stream, consumer string) string {
	return apiPrefix + "CONSUMER.MSG.NEXT." + stream + "." + consumer
}

// StreamMsgGetSubject is the JetStream API subject of a stream's message
// get, which the stream's leader answers (a direct get may be answered by a
// lagging follower).
func StreamMsgGetSubject(apiPrefix, stream string) string {
	return apiPrefix + "STREAM.MSG.GET." + stream
}
