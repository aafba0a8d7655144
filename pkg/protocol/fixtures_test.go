package protocol_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/protocol"
)

// wireCase is one message type with a fixed, fully populated value: every
// field, at every depth, is set to a non-zero value, so a round trip or a
// golden file covers each field's tag and encoding.
type wireCase struct {
	// name is the golden file's base name (snake_case, as on the wire).
	name string
	// fuzz is the name of the type's fuzz target.
	fuzz string
	msg  protocol.Message
	// zero returns a fresh, empty value of the same type to decode into.
	zero func() protocol.Message
}

// Fixed times (unix nanoseconds) used by the fixtures.
const (
	t0 = int64(1767225600000000000) // 2026-01-01T00:00:00Z
	t1 = t0 + 1500000000
)

func runStart() *protocol.RunStart {
	return &protocol.RunStart{
		Workflow:       "parallel_fetch",
		InitialState:   "start",
		DefVersion:     "v3",
		Input:          []byte{0x92, 0x01, 0x02},
		InputFormat:    protocol.InputJSON,
		IdempotencyKey: "order-42",
		Flow:           "nightly",
		Slot:           t0,
		CreatedAt:      t0,
	}
}

func errorInfo() *protocol.ErrorInfo {
	return &protocol.ErrorInfo{
		Category: protocol.CategoryRetryExhausted,
		Message:  "fetch failed after 3 attempts",
		Attempts: 3,
		State:    "fetch",
		Path:     []string{"start", "fetch"},
		Cause: &protocol.ErrorInfo{
			Category: protocol.CategoryTimeout,
			Message:  "attempt timed out after 2s",
			Attempts: 1,
			State:    "fetch",
			Path:     []string{"fetch"},
			Cause: &protocol.ErrorInfo{
				Category: protocol.CategoryTaskExecution,
				Message:  "dial tcp: i/o timeout",
				Attempts: 1,
				State:    "fetch",
				Path:     []string{"fetch"},
				// The innermost cause must stop somewhere; a self-similar
				// leaf with every field set keeps the value finite.
				Cause: &protocol.ErrorInfo{
					Category: protocol.CategoryPermanent,
					Message:  "root",
					Attempts: 1,
					State:    "fetch",
					Path:     []string{"fetch"},
				},
			},
		},
	}
}

func taskSpec(kind string) protocol.TaskSpec {
	return protocol.TaskSpec{
		Kind:   kind,
		Params: []byte{0x81, 0xa3, 'u', 'r', 'l', 0xa5, 'h', 't', 't', 'p', 's'},
		Retry: protocol.RetryPolicy{
			Mode:       protocol.RetryExponential,
			MaxRetries: 5,
			BaseDelay:  100000000,
			Multiplier: 2.5,
			MaxDelay:   30000000000,
			Jitter:     0.25,
		},
		AttemptTimeout: 2000000000,
		Breaker:        "payments-api",
		BreakerPolicy: &protocol.BreakerPolicy{
			FailureThreshold: 5,
			ResetTimeout:     60000000000,
			HalfOpenMaxCalls: 2,
		},
	}
}

func joinSpec() protocol.JoinSpec {
	return protocol.JoinSpec{
		Strategy:  protocol.JoinPercentage,
		N:         2,
		P:         0.75,
		JoinState: "aggregate",
		Timeout:   10000000000,
		Bulkhead:  4,
	}
}

func splitSpec() *protocol.SplitSpec {
	return &protocol.SplitSpec{
		Tasks: []protocol.TaskSpec{taskSpec("fetch_a"), taskSpec("fetch_b")},
		Join:  joinSpec(),
	}
}

// compactSplitSpec is a split in the compact form (see protocol.SplitSpec).
func compactSplitSpec() *protocol.SplitSpec {
	a, b := taskSpec("fetch"), taskSpec("fetch")
	b.Params = []byte{0x81, 0xa1, 'u', 0xa1, 'b'}
	s := &protocol.SplitSpec{Tasks: []protocol.TaskSpec{a, b}, Join: joinSpec()}
	s.Compact()
	return s
}

// wireCases returns every wire message type, fully populated. Add a case
// here for each new message type; TestWireCasesCoverEveryType checks that
// none is missing from the list of names below.
func wireCases() []wireCase {
	return append(wireCasesV1(), wireCase{"run_record_scheduled", "FuzzDecodeRunRecord", scheduledRecord(),
		func() protocol.Message { return new(protocol.RunRecord) }})
}

// wireCasesV1 are the cases before the scheduled run record.
func wireCasesV1() []wireCase {
	return []wireCase{
		{"trigger", "FuzzDecodeTrigger", &protocol.Trigger{
			V:            protocol.SchemaVersion,
			Workflow:     "parallel_fetch",
			InitialState: "start",
			DefVersion:   "v3",
			Input:        []byte{0x81, 0xa1, 'n', 0x2a},
			InputFormat:  protocol.InputJSON,
			RunID:        "run-01HZX", // not with IdempotencyKey: the pair is refused
			Flow:         "nightly",
			Slot:         t0,
			Epoch:        7,
		}, func() protocol.Message { return new(protocol.Trigger) }},
		// A trigger of a run that starts later: SchemaVersion4.
		{"trigger_v4", "FuzzDecodeTrigger", &protocol.Trigger{
			V:              protocol.SchemaVersion4,
			Workflow:       "reminder",
			InitialState:   "send",
			DefVersion:     "v2",
			Input:          []byte{0x81, 0xa1, 'n', 0x2a},
			InputFormat:    protocol.InputJSON,
			IdempotencyKey: "remind-42",
			Flow:           "nightly",
			Slot:           t0,
			Epoch:          7,
			StartAt:        t1,
		}, func() protocol.Message { return new(protocol.Trigger) }},
		{"trigger_reply", "FuzzDecodeTriggerReply", &protocol.TriggerReply{
			V:        protocol.SchemaVersion,
			RunID:    "run-01HZX",
			Error:    errorInfo(),
			Existing: true,
			Retry:    true,
		}, func() protocol.Message { return new(protocol.TriggerReply) }},
		{"task_command", "FuzzDecodeTaskCommand", &protocol.TaskCommand{
			V:                protocol.SchemaVersion,
			RunID:            "run-01HZX",
			Workflow:         "parallel_fetch",
			State:            "fetch",
			Step:             3,
			Branch:           1,
			Task:             taskSpec("fetch_url"),
			Deadline:         t1,
			Input:            []byte{0x92, 0x01, 0x02},
			InputFormat:      protocol.InputJSON,
			InputInRecord:    true,
			Previous:         []byte{0x81, 0xa1, 'n', 0x07},
			PreviousInRecord: true,
			Path:             []string{"start", "plan", "fetch"},
			JoinOf:           2,
			JoinBranches:     3,
			Start:            runStart(),
		}, func() protocol.Message { return new(protocol.TaskCommand) }},
		{"task_result", "FuzzDecodeTaskResult", &protocol.TaskResult{
			V:         protocol.SchemaVersion,
			RunID:     "run-01HZX",
			Step:      3,
			Branch:    1,
			Status:    protocol.ResultFailed,
			Next:      "aggregate",
			Output:    []byte{0xa2, 'o', 'k'},
			Error:     errorInfo(),
			Attempts:  3,
			Split:     splitSpec(),
			Worker:    "worker-7",
			StoreUsed: true,
			// History fields.
			AttemptStarted:  t0,
			AttemptDuration: 1200000000,
			Start:           runStart(),
		}, func() protocol.Message { return new(protocol.TaskResult) }},
		{"run_record", "FuzzDecodeRunRecord", &protocol.RunRecord{
			V:               protocol.SchemaVersion,
			ID:              "run-01HZX",
			Workflow:        "parallel_fetch",
			DefVersion:      "v3",
			Status:          protocol.RunFailed,
			State:           "fetch",
			Step:            3,
			Path:            []string{"start", "plan", "fetch"},
			Input:           []byte{0x81, 0xa1, 'n', 0x2a},
			InputFormat:     protocol.InputJSON,
			Output:          []byte{0xc3},
			Error:           errorInfo(),
			CreatedAt:       t0,
			UpdatedAt:       t1,
			Deadline:        t1 + 60000000000,
			CancelRequested: true,
			IdempotencyKey:  "order-1234",
			Flow:            "nightly",
			Slot:            t0,
			Split: &protocol.SplitProgress{
				Total:      3,
				Dispatched: 3,
				Succeeded:  1,
				Failed:     1,
				Done:       []byte{0b101},
				Errors:     []protocol.BranchError{{Index: 2, Error: errorInfo()}},
				Dynamic:    true,
				Join:       joinSpec(),
				StartedAt:  t0,
				TimedOut:   1,
			},
			JoinOf:       2,
			JoinBranches: 3,
			StoreUsed:    true,
			History: []protocol.Step{{
				Seq:             2,
				State:           "fetch",
				Kind:            protocol.StepSplit,
				Entered:         t0,
				Left:            t1,
				Outcome:         protocol.StepFailed,
				Attempts:        3,
				Worker:          "worker-7",
				AttemptStarted:  t0 + 1000000,
				AttemptDuration: 1200000000,
				Error:           errorInfo(),
				Split: &protocol.SplitSummary{
					Strategy:    protocol.JoinQuorum,
					Required:    2,
					Dynamic:     true,
					Total:       5,
					Succeeded:   1,
					Failed:      1,
					TimedOut:    1,
					Cancelled:   2,
					Decision:    "failed",
					JoinTimeout: true,
				},
			}},
			Totals: protocol.RunTotals{
				Steps:          103,
				Dropped:        3,
				Attempts:       9,
				FailedAttempts: 4,
				FailedTasks:    2,
			},
		}, func() protocol.Message { return new(protocol.RunRecord) }},
		{"branch_outcome", "FuzzDecodeBranchOutcome", &protocol.BranchOutcome{
			V:      protocol.SchemaVersion,
			Index:  2,
			Status: protocol.BranchFailed,
			Output: []byte{0xa4, 'p', 'a', 'r', 't'},
			Error:  errorInfo(),
		}, func() protocol.Message { return new(protocol.BranchOutcome) }},
		{"event", "FuzzDecodeEvent", &protocol.Event{
			V:        protocol.SchemaVersion,
			Type:     protocol.EventFailed,
			RunID:    "run-01HZX",
			Workflow: "parallel_fetch",
			State:    "fetch",
			Step:     3,
			Status:   protocol.RunFailed,
			Time:     t1,
			Error:    errorInfo(),
			Path:     []string{"start", "plan", "fetch"},
			Output:   []byte{0xc2},
			Detail:   "join all: 1 of 3 branches failed",
		}, func() protocol.Message { return new(protocol.Event) }},
		{"cancel_request", "FuzzDecodeCancelRequest", &protocol.CancelRequest{
			V:      protocol.SchemaVersion,
			RunID:  "run-01HZX",
			Reason: "operator request",
		}, func() protocol.Message { return new(protocol.CancelRequest) }},
		{"cancel_notice", "FuzzDecodeCancelNotice", &protocol.CancelNotice{
			V:      protocol.SchemaVersion,
			RunID:  "run-01HZX",
			Step:   3,
			Branch: 2,
			All:    true,
			Reason: "join satisfied",
		}, func() protocol.Message { return new(protocol.CancelNotice) }},
		{"timer_fire", "FuzzDecodeTimerFire", &protocol.TimerFire{
			V:     protocol.SchemaVersion,
			Kind:  protocol.TimerJoin,
			RunID: "run-01HZX",
			Step:  3,
			At:    t1,
		}, func() protocol.Message { return new(protocol.TimerFire) }},
		{"definition", "FuzzDecodeDefinition", &protocol.Definition{
			V:       protocol.SchemaVersion,
			Name:    "parallel_fetch",
			Version: "v3",
			Initial: "start",
			States: []protocol.StateDef{
				{Name: "start", Kind: protocol.StateSingle, Task: ptr(taskSpec("plan")), Split: splitSpec()},
				{Name: "fetch", Kind: protocol.StateSplit, Task: ptr(taskSpec("noop")), Split: splitSpec()},
			},
			Exits:          []string{"done", "failed"},
			TotalTimeout:   300000000000,
			Queue:          "default",
			MaxTransitions: 1000,
		}, func() protocol.Message { return new(protocol.Definition) }},
		// A definition with a routed failure: SchemaVersion3.
		{"definition_v3", "FuzzDecodeDefinition", &protocol.Definition{
			V:       protocol.SchemaVersion3,
			Name:    "order",
			Version: "v4",
			Initial: "charge",
			States: []protocol.StateDef{
				{Name: "charge", Kind: protocol.StateSingle, Task: ptr(taskSpec("charge")), Split: splitSpec(), OnFailure: "release"},
			},
			Exits:          []string{"release", "done"},
			TotalTimeout:   300000000000,
			Queue:          "default",
			MaxTransitions: 1000,
		}, func() protocol.Message { return new(protocol.Definition) }},
		{"breaker_state", "FuzzDecodeBreakerState", &protocol.BreakerState{
			V:     protocol.SchemaVersion,
			Name:  "payments-api",
			Phase: protocol.BreakerHalfOpen,
			Policy: protocol.BreakerPolicy{
				FailureThreshold: 5,
				ResetTimeout:     60000000000,
				HalfOpenMaxCalls: 2,
			},
			ConsecutiveFailures: 5,
			OpenUntil:           t1,
			HalfOpenInFlight:    1,
			HalfOpenSuccesses:   1,
			Epoch:               12,
			UpdatedAt:           t0,
		}, func() protocol.Message { return new(protocol.BreakerState) }},
		{"schedule", "FuzzDecodeSchedule", &protocol.Schedule{
			V:            protocol.SchemaVersion,
			ID:           "nightly",
			Kind:         protocol.FlowCron,
			Workflow:     "parallel_fetch",
			InitialState: "start",
			Input:        []byte{0x80},
			Cron:         "0 0 2 * * *",
			Every:        3600000000000,
			TimeZone:     "Europe/Paris",
			Misfire:      protocol.MisfireCatchUp,
			Backoff: protocol.BackoffPolicy{
				Initial:     1000000000,
				Multiplier:  2,
				MaxDelay:    600000000000,
				Jitter:      0.1,
				StreakLimit: 10,
			},
			Version: 4,
		}, func() protocol.Message { return new(protocol.Schedule) }},
		{"flow_status", "FuzzDecodeFlowStatus", &protocol.FlowStatus{
			V:             protocol.SchemaVersion,
			ID:            "nightly",
			Phase:         protocol.FlowBackoff,
			RunCount:      42,
			LastRun:       t0,
			LastSlot:      t0,
			CurrentRun:    "run-01HZX",
			FailureStreak: 2,
			NextEligible:  t1,
			LastError:     "fetch failed after 3 attempts",
			SkippedFires:  1,
			PausedAt:      t1,
			ResumedAt:     t0,
		}, func() protocol.Message { return new(protocol.FlowStatus) }},
		{"split_spec_record", "FuzzDecodeSplitSpecRecord", &protocol.SplitSpecRecord{
			V:    protocol.SchemaVersion,
			Spec: *compactSplitSpec(),
		}, func() protocol.Message { return new(protocol.SplitSpecRecord) }},
		{"dead_letter", "FuzzDecodeDeadLetter", &protocol.DeadLetter{
			V:        protocol.SchemaVersion,
			Source:   "result",
			Subject:  "cano.result.run-01HZX",
			Reason:   "unknown workflow",
			Category: string(protocol.CategoryConfiguration),
			Headers: map[string]string{
				"Nats-Msg-Id":  "r:run-01HZX/3/1",
				"Content-Type": "application/msgpack",
				"X-Trace":      "abc123",
			},
			Data: []byte{0x81, 0xa1, 'v', 0x09},
			Time: t1,
		}, func() protocol.Message { return new(protocol.DeadLetter) }},
		{"worker_info", "FuzzDecodeWorkerInfo", &protocol.WorkerInfo{
			V:                 protocol.SchemaVersion,
			ID:                "ip-10-0-0-7.ec2.internal-4242",
			Hostname:          "ip-10-0-0-7.ec2.internal",
			PID:               4242,
			Version:           "v0.4.0",
			StartedAt:         t0,
			HeartbeatAt:       t1,
			HeartbeatInterval: 10000000000,
			Kinds:             []string{"collect", "fetch_url"},
			Queues:            []string{"default", "bulk"},
			Concurrency:       256,
			InFlight:          17,
			Health:            protocol.WorkerDegraded,
			HealthReason:      "db: slow",
			Stopping:          true,
		}, func() protocol.Message { return new(protocol.WorkerInfo) }},
	}
}

// scheduledRecord is the run_record fixture as a run that starts later.
func scheduledRecord() *protocol.RunRecord {
	for _, c := range wireCasesV1() {
		if c.name == "run_record" {
			rec := *c.msg.(*protocol.RunRecord)
			rec.Status, rec.StartAt = protocol.RunScheduled, t1+30000000000
			return &rec
		}
	}
	panic("no run_record fixture")
}

func ptr[T any](v T) *T { return &v }

// requireFullyPopulated fails when any field of v, at any depth, is its
// zero value, so a fixture cannot silently leave a field out of the
// round-trip and golden tests.
func requireFullyPopulated(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return // checked by the caller; the leaf ErrorInfo.Cause ends the chain
		}
		requireFullyPopulated(t, v.Elem(), path)
	case reflect.Struct:
		// A split spec has two forms: Tasks, or Common with Params.
		split := v.Type() == reflect.TypeOf(protocol.SplitSpec{})
		if split {
			full, compact := !v.FieldByName("Tasks").IsZero(), !v.FieldByName("Common").IsZero() && !v.FieldByName("Params").IsZero()
			require.Truef(t, full != compact, "fixture %s must use exactly one form (Tasks, or Common and Params)", path)
		}
		// A trigger names its run by RunID or by IdempotencyKey, never both.
		trig := v.Type() == reflect.TypeOf(protocol.Trigger{})
		if trig {
			byID, byKey := !v.FieldByName("RunID").IsZero(), !v.FieldByName("IdempotencyKey").IsZero()
			require.Truef(t, byID != byKey, "fixture %s must set exactly one of RunID and IdempotencyKey", path)
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			fv := v.Field(i)
			p := path + "." + f.Name
			isLeafCause := f.Name == "Cause" && fv.IsNil()
			isOtherForm := split && (f.Name == "Tasks" || f.Name == "Common" || f.Name == "Params")
			isCommonParams := f.Name == "Params" && strings.HasSuffix(path, ".Common") // in SplitSpec.Params
			isRunName := trig && (f.Name == "RunID" || f.Name == "IdempotencyKey")
			// The version 1 definition has no routed failure (definition_v3 has).
			isV1Definition := f.Name == "OnFailure" && strings.HasPrefix(path, "definition.")
			// The version 1 trigger starts at once (trigger_v4 starts later);
			// the run record is not a scheduled run's (run_record_scheduled is).
			isNotLater := f.Name == "StartAt" && (path == "trigger" || path == "run_record")
			require.Truef(t, !fv.IsZero() || isLeafCause || isOtherForm || isCommonParams || isRunName || isV1Definition || isNotLater,
				"fixture field %s is zero", p)
			requireFullyPopulated(t, fv, p)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			requireFullyPopulated(t, v.Index(i), path+"[]")
		}
	}
}
