// Package layout builds the names the engine uses besides subjects (those
// are pkg/protocol's, subjects.go): the streams, KV buckets and consumers
// it provisions, the keys of its buckets, message ids for de-duplicated
// publishes, and derived run ids and timer names. They are the engine's
// layout, not part of the public API; pkg/protocol documents the stream and
// bucket names for clients in other languages.
package layout

import (
	"encoding/base64"
	"encoding/hex"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/cano-nats/cano/pkg/protocol"
)

// upper is the prefix of n in stream-name form, e.g. "CANO".
func upper(n protocol.Names) string {
	return strings.ToUpper(strings.ReplaceAll(n.Prefix(), "-", "_"))
}

// bucket is the prefix of n in bucket-name form (dots not allowed), e.g. "cano".
func bucket(n protocol.Names) string { return strings.ReplaceAll(n.Prefix(), "-", "_") }

// Stream names.

// TriggersStream is the stream of triggers.
func TriggersStream(n protocol.Names) string { return upper(n) + "_TRIGGERS" }

// TasksStream is the stream of task commands.
func TasksStream(n protocol.Names) string { return upper(n) + "_TASKS" }

// TasksAnchorSubject is the subject of the tasks stream's anchor messages
// (pkg/coordinator, anchor.go): outside the task subjects, so no task
// consumer takes them.
func TasksAnchorSubject(n protocol.Names) string { return n.Prefix() + ".anchor.tasks" }

// ResultsStream is the stream of task results.
func ResultsStream(n protocol.Names) string { return upper(n) + "_RESULTS" }

// ControlStream is the stream of cancel requests.
func ControlStream(n protocol.Names) string { return upper(n) + "_CONTROL" }

// TimersStream is the stream of scheduled timer messages and their fires.
func TimersStream(n protocol.Names) string { return upper(n) + "_TIMERS" }

// EventsStream is the optional capture stream of run and breaker events
// (provision.Config.EventCapture): events are core NATS messages, which
// the server stores only when this stream exists.
func EventsStream(n protocol.Names) string { return upper(n) + "_EVENTS" }

// DLQStream is the dead-letter stream.
func DLQStream(n protocol.Names) string { return upper(n) + "_DLQ" }

// KV bucket names.

// RunsBucket holds the run records.
func RunsBucket(n protocol.Names) string { return bucket(n) + "_runs" }

// BranchesBucket holds split branch outcomes and dynamic split specs.
func BranchesBucket(n protocol.Names) string { return bucket(n) + "_branches" }

// DefinitionsBucket holds workflow definitions by name and version.
func DefinitionsBucket(n protocol.Names) string { return bucket(n) + "_definitions" }

// SchedulesBucket holds the scheduler's flows and their status.
func SchedulesBucket(n protocol.Names) string { return bucket(n) + "_schedules" }

// BreakersBucket holds the shared circuit breakers.
func BreakersBucket(n protocol.Names) string { return bucket(n) + "_breakers" }

// StoreBucket is the bucket of the tasks' shared key/value store.
func StoreBucket(n protocol.Names) string { return bucket(n) + "_store" }

// WorkersBucket holds worker presence records.
func WorkersBucket(n protocol.Names) string { return bucket(n) + "_workers" }

// LeaderBucket holds the scheduler leader lease.
func LeaderBucket(n protocol.Names) string { return bucket(n) + "_leader" }

// TaskConsumer is the durable consumer shared by every worker of kind on queue.
func TaskConsumer(queue, kind string) string { return "task_" + queue + "_" + kind }

// Message ids (Nats-Msg-Id) for de-duplicated publishes.

// CommandMsgID identifies the command for step/branch of run at attempt 0.
func CommandMsgID(runID string, step uint32, branch int32) string {
	var a [96]byte // one allocation: the string
	return string(appendStepID(a[:0], runID, step, branch))
}

// ResultMsgID identifies the result of step/branch of run.
func ResultMsgID(runID string, step uint32, branch int32) string {
	var a [96]byte
	return string(appendStepID(append(a[:0], "r:"...), runID, step, branch))
}

// EventMsgID identifies the event of type typ for step of run, so the
// optional events capture stream drops a re-published duplicate.
func EventMsgID(runID string, step uint32, typ string) string {
	var a [96]byte
	b := append(a[:0], "ev:"...)
	b = append(b, runID...)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(step), 10)
	b = append(b, ':')
	return string(append(b, typ...))
}

// appendStepID appends run/step/branch to b.
func appendStepID(b []byte, runID string, step uint32, branch int32) []byte {
	b = append(b, runID...)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(step), 10)
	b = append(b, '/')
	return strconv.AppendInt(b, int64(branch), 10)
}

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
// when it is a valid token ([protocol.ValidToken]), else "b64." and the id in
// unpadded base64url, so any id (a host name with dots, say) gives a valid
// key and no two ids share one.
func WorkerKey(id string) string {
	if protocol.ValidToken(id) == nil {
		return id
	}
	return workerKeyEncoded + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// workerKeyEncoded prefixes an encoded worker key; a token has no '.', so
// no plain key starts with it.
const workerKeyEncoded = "b64."

// LeaderKey is the scheduler lease key in the leader bucket.
const LeaderKey = "scheduler"

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
func TimerName(kind protocol.TimerKind, step uint32) string {
	if kind == protocol.TimerRunDeadline {
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

// KVStream is the name of the stream behind a KV bucket.
func KVStream(bucket string) string { return "KV_" + bucket }

// Definitions-bucket key kinds, as returned by [ParseDefinitionsKey].
const (
	DefinitionsKeyDef    = "def"    // [DefinitionKey]: one version of a definition
	DefinitionsKeyLatest = "latest" // [LatestDefinitionKey]: the latest version's name
)

// ParseDefinitionsKey splits a definitions-bucket key into its kind (one of
// the DefinitionsKey constants), the workflow name and, for a
// [DefinitionsKeyDef] key, the version. ok is false for any other key. Names
// and versions are tokens ([protocol.ValidToken]) and hold no '.', so the split is
// exact.
func ParseDefinitionsKey(key string) (kind, name, version string, ok bool) {
	kind, rest, _ := strings.Cut(key, ".")
	switch kind {
	case DefinitionsKeyLatest:
		if rest == "" || strings.Contains(rest, ".") {
			return "", "", "", false
		}
		return kind, rest, "", true
	case DefinitionsKeyDef:
		name, version, found := strings.Cut(rest, ".")
		if !found || name == "" || version == "" || strings.Contains(version, ".") {
			return "", "", "", false
		}
		return kind, name, version, true
	}
	return "", "", "", false
}

// WorkflowFromTriggerSubject returns the workflow token of a trigger
// subject of n ([protocol.Names.TriggerSubject]), or "" when subj is not
// one.
func WorkflowFromTriggerSubject(n protocol.Names, subj string) string {
	p := n.TriggerSubject("")
	if !strings.HasPrefix(subj, p) {
		return ""
	}
	return subj[len(p):]
}

// WorkflowFromRPCTriggerSubject returns the workflow token of a trigger
// request subject of n ([protocol.Names.RPCTriggerSubject]), or "" when
// subj is not one.
func WorkflowFromRPCTriggerSubject(n protocol.Names, subj string) string {
	p := n.RPCTriggerSubject("")
	if !strings.HasPrefix(subj, p) {
		return ""
	}
	return subj[len(p):]
}
