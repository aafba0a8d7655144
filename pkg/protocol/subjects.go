package protocol

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
)

// PrefixDefault is the name prefix used when [Names] is built with an empty
// prefix. Two deployments sharing one NATS account use different prefixes.
const PrefixDefault = "cano"

// Names builds every subject, stream name and KV bucket name Cano uses, from
// one configurable prefix. No other code builds subjects by concatenation.
//
// With the default prefix "cano":
//
//	cano.trigger.<workflow>                 triggers (stream CANO_TRIGGERS)
//	cano.task.<queue>.<kind>                task commands (stream CANO_TASKS)
//	cano.result.<run>                       task results (stream CANO_RESULTS)
//	cano.control.cancel.<run>               cancel requests (stream CANO_CONTROL)
//	cano.timer.at.<run>.<name>              scheduled timers (stream CANO_TIMERS)
//	cano.timer.fire.<run>.<name>            timer fires (stream CANO_TIMERS)
//	cano.event.<workflow>.<run>.<type>      events (core NATS; captured by the optional stream CANO_EVENTS)
//	cano.dlq.<source>                       dead letters (stream CANO_DLQ)
//	cano.notice.cancel.<run>                cancel notices to workers (core NATS)
//
// The zero value is not useful; use [NewNames].
type Names struct {
	prefix string // e.g. "cano"
	upper  string // e.g. "CANO", for stream names
	bucket string // e.g. "cano", for bucket names (dots not allowed)
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
	return Names{
		prefix: prefix,
		upper:  strings.ToUpper(strings.ReplaceAll(prefix, "-", "_")),
		bucket: strings.ReplaceAll(prefix, "-", "_"),
	}, nil
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

// Stream names.

// TriggersStream is the stream of triggers.
func (n Names) TriggersStream() string { return n.upper + "_TRIGGERS" }

// TasksStream is the stream of task commands.
func (n Names) TasksStream() string { return n.upper + "_TASKS" }

// ResultsStream is the stream of task results.
func (n Names) ResultsStream() string { return n.upper + "_RESULTS" }

// ControlStream is the stream of cancel requests.
func (n Names) ControlStream() string { return n.upper + "_CONTROL" }

// TimersStream is the stream of scheduled timer messages and their fires.
func (n Names) TimersStream() string { return n.upper + "_TIMERS" }

// EventsStream is the optional capture stream of run and breaker events
// (provision.Config.EventCapture): events are core NATS messages, which
// the server stores only when this stream exists.
func (n Names) EventsStream() string { return n.upper + "_EVENTS" }

// DLQStream is the dead-letter stream.
func (n Names) DLQStream() string { return n.upper + "_DLQ" }

// KV bucket names.

// RunsBucket holds the run records.
func (n Names) RunsBucket() string { return n.bucket + "_runs" }

// BranchesBucket holds split branch outcomes and dynamic split specs.
func (n Names) BranchesBucket() string { return n.bucket + "_branches" }

// DefinitionsBucket holds workflow definitions by name and version.
func (n Names) DefinitionsBucket() string { return n.bucket + "_definitions" }

// SchedulesBucket holds the scheduler's flows and their status.
func (n Names) SchedulesBucket() string { return n.bucket + "_schedules" }

// BreakersBucket holds the shared circuit breakers.
func (n Names) BreakersBucket() string { return n.bucket + "_breakers" }

// StoreBucket is the bucket of the tasks' shared key/value store.
func (n Names) StoreBucket() string { return n.bucket + "_store" }

// WorkersBucket holds worker presence records.
func (n Names) WorkersBucket() string { return n.bucket + "_workers" }

// LeaderBucket holds the scheduler leader lease.
func (n Names) LeaderBucket() string { return n.bucket + "_leader" }

// Trigger subjects.
func (n Names) TriggerSubject(workflow string) string { return n.prefix + ".trigger." + workflow }

// TriggerWildcard matches every trigger subject.
func (n Names) TriggerWildcard() string { return n.prefix + ".trigger.>" }

// WorkflowFromTriggerSubject returns the workflow token of a trigger subject,
// or "" when subj is not one.
func (n Names) WorkflowFromTriggerSubject(subj string) string {
	p := n.prefix + ".trigger."
	if !strings.HasPrefix(subj, p) {
		return ""
	}
	return subj[len(p):]
}

// Task subjects. Queue and kind are single tokens.
func (n Names) TaskSubject(queue, kind string) string {
	return n.prefix + ".task." + queue + "." + kind
}

// TaskWildcard matches every task subject.
func (n Names) TaskWildcard() string { return n.prefix + ".task.>" }

// TaskConsumer is the durable consumer shared by every worker of kind on queue.
func (n Names) TaskConsumer(queue, kind string) string { return "task_" + queue + "_" + kind }

// Result subjects.
func (n Names) ResultSubject(runID string) string { return n.prefix + ".result." + runID }

// ResultWildcard matches every result subject.
func (n Names) ResultWildcard() string { return n.prefix + ".result.>" }

// Control subjects (cancel requests, durable).
func (n Names) CancelSubject(runID string) string { return n.prefix + ".control.cancel." + runID }

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

// Message ids (Nats-Msg-Id) for de-duplicated publishes.

// CommandMsgID identifies the command for step/branch of run at attempt 0.
func CommandMsgID(runID string, step uint32, branch int32) string {
	b := make([]byte, 0, len(runID)+24)
	b = append(b, runID...)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(step), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(branch), 10)
	return string(b)
}

// ResultMsgID identifies the result of step/branch of run.
func ResultMsgID(runID string, step uint32, branch int32) string {
	return "r:" + CommandMsgID(runID, step, branch)
}

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

// KV keys.

// RunKey is a run record's key in the runs bucket.
func RunKey(runID string) string { return runID }

// BranchKey is a branch outcome's key in the branches bucket.
func BranchKey(runID string, step uint32, branch int32) string {
	b := make([]byte, 0, len(runID)+24)
	b = append(b, runID...)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(step), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(branch), 10)
	return string(b)
}

// SplitSpecKey holds a dynamic split's spec in the branches bucket.
func SplitSpecKey(runID string, step uint32) string {
	return runID + "." + strconv.FormatUint(uint64(step), 10) + ".spec"
}

// StepBranchesWildcard matches the branches-bucket keys of one step of a
// run: its branch outcomes ([BranchKey]) and, for a dynamic split, its spec
// ([SplitSpecKey]).
func StepBranchesWildcard(runID string, step uint32) string {
	return runID + "." + strconv.FormatUint(uint64(step), 10) + ".*"
}

// RunBranchesWildcard matches every branches-bucket key of a run.
func RunBranchesWildcard(runID string) string { return runID + ".>" }

// DefinitionKey is a definition version's key in the definitions bucket.
func DefinitionKey(name, version string) string { return "def." + name + "." + version }

// LatestDefinitionKey names the latest registered version of a workflow.
// LatestDefinitionKey is the definitions bucket key naming a workflow's
// latest version.
func LatestDefinitionKey(name string) string { return "latest." + name }

// ScheduleKey and FlowStatusKey are a flow's keys in the schedules bucket.
func ScheduleKey(id string) string { return "flow." + id }

// FlowStatusKey is a flow's status key in the schedules bucket.
func FlowStatusKey(id string) string { return "status." + id }

// BreakerKey is a shared breaker's key in the breakers bucket.
func BreakerKey(name string) string { return name }

// WorkerKey is a worker's presence key in the workers bucket: the id itself
// when it is a valid token ([ValidToken]), else "b64." and the id in
// unpadded base64url, so any id (a host name with dots, say) gives a valid
// key and no two ids share one.
func WorkerKey(id string) string {
	if ValidToken(id) == nil {
		return id
	}
	return workerKeyEncoded + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// workerKeyEncoded prefixes an encoded worker key; a token has no '.', so
// no plain key starts with it.
const workerKeyEncoded = "b64."

// LeaderKey is the scheduler lease key in the leader bucket.
const LeaderKey = "scheduler"

// HeaderReplyTo carries the subject a coordinator answers a trigger on (the
// JetStream reply subject is taken by the publish acknowledgement).
const HeaderReplyTo = "Cano-Reply-To"

// IdempotentRunID derives the run id of a trigger with an idempotency key,
// so a second trigger with the same key names the same run.
func IdempotentRunID(workflow, key string) string {
	h := fnv.New128a()
	h.Write([]byte(workflow))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return "idem-" + hex.EncodeToString(h.Sum(nil))
}

// StreamRunID derives the run id of a trigger that names none from its
// stream sequence and timestamp, stable across redeliveries.
func StreamRunID(streamSeq uint64, ts time.Time) string {
	return "t" + strconv.FormatUint(streamSeq, 36) + "-" + strconv.FormatInt(ts.UnixNano(), 36)
}

// TimerName names a durable timer of a run (a subject token).
func TimerName(kind TimerKind, step uint32) string {
	if kind == TimerRunDeadline {
		return string(kind)
	}
	return string(kind) + "-" + strconv.FormatUint(uint64(step), 10)
}

// ---- Scheduler (issue 6): manual trigger requests and run ids of flow fires. ----

// FlowTriggerKey is a pending manual trigger request of flow id in the
// schedules bucket; the scheduler leader acts on it, then deletes it.
func FlowTriggerKey(id string) string { return "trigger." + id }

// Schedules-bucket key kinds, as returned by [ParseSchedulesKey].
const (
	SchedulesKeyFlow    = "flow"    // [ScheduleKey]
	SchedulesKeyStatus  = "status"  // [FlowStatusKey]
	SchedulesKeyTrigger = "trigger" // [FlowTriggerKey]
)

// ParseSchedulesKey splits a schedules-bucket key into its kind (one of the
// SchedulesKey constants) and flow id; ok is false for any other key.
func ParseSchedulesKey(key string) (kind, id string, ok bool) {
	kind, id, ok = strings.Cut(key, ".")
	switch kind {
	case SchedulesKeyFlow, SchedulesKeyStatus, SchedulesKeyTrigger:
		return kind, id, ok && id != ""
	}
	return "", "", false
}

// FlowRunID is the run id (and Nats-Msg-Id) of flow's fire for slot (unix
// nanoseconds): the same slot always gives the same run id, so two leaders
// cannot start it twice.
func FlowRunID(flow string, slot int64) string {
	return "flow-" + flow + "-" + strconv.FormatInt(slot, 10)
}

// JetStream's own subjects, used where nats.go's API has no call for what
// the engine needs (a KV write carrying a per-message TTL, a read the
// stream leader answers).

// KVSubject is the subject a KV bucket stores key under.
func KVSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// KVStream is the name of the stream behind a KV bucket.
func KVStream(bucket string) string { return "KV_" + bucket }

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

// StreamMsgGetSubject is the JetStream API subject of a stream's message
// get, which the stream's leader answers (a direct get may be answered by a
// lagging follower).
func StreamMsgGetSubject(apiPrefix, stream string) string {
	return apiPrefix + "STREAM.MSG.GET." + stream
}
