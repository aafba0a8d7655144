package scheduler

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// MaxFlowIDLen is the longest flow id accepted, so that run ids derived from
// it (flow-<flow>-<slot>) stay valid names.
const MaxFlowIDLen = 100

// Kind names how a flow is scheduled.
type Kind string

// Flow kinds.
const (
	// KindCron fires on the slots of a cron expression.
	KindCron Kind = "cron"
	// KindEvery runs at once, then waits the interval after each run ends
	// (fixed delay, as cano).
	KindEvery Kind = "every"
	// KindManual runs only when triggered.
	KindManual Kind = "manual"
)

// Schedule says when a flow fires. Build one with [Cron], [CronIn], [Every]
// or [Manual].
type Schedule struct {
	Kind Kind
	// Cron is the expression of a KindCron flow: 6 fields with seconds first
	// ("0 */5 * * * *", as cano), the standard 5 fields ("*/5 * * * *"), or
	// a descriptor ("@hourly", "@every 5s"). @every slots are aligned on the
	// Unix epoch, so every scheduler instance computes the same slots.
	Cron string
	// Every is the interval of a KindEvery flow.
	Every time.Duration
	// TimeZone is the IANA zone a cron expression is evaluated in; "" means
	// UTC (cano's only zone).
	TimeZone string
}

// Cron returns a cron schedule evaluated in UTC.
func Cron(expr string) Schedule { return Schedule{Kind: KindCron, Cron: expr} }

// CronIn returns a cron schedule evaluated in the IANA time zone tz.
func CronIn(expr, tz string) Schedule { return Schedule{Kind: KindCron, Cron: expr, TimeZone: tz} }

// Every returns a fixed-delay schedule: the flow runs at once, then d after
// each run ends.
func Every(d time.Duration) Schedule { return Schedule{Kind: KindEvery, Every: d} }

// Manual returns a schedule that fires only on [Client.Trigger].
func Manual() Schedule { return Schedule{Kind: KindManual} }

// Misfire says what a cron flow does with slots missed while no leader was
// firing (downtime, failover).
type Misfire string

// Misfire policies.
const (
	// MisfireSkip (the default, cano's behaviour) forgets missed slots and
	// waits for the next one.
	MisfireSkip Misfire = "skip"
	// MisfireCatchUp runs the latest missed slot once, as soon as a leader
	// is back, then resumes the schedule.
	MisfireCatchUp Misfire = "catch_up"
)

// Flow is one scheduled workflow: what to start and when. Flows are stored in
// the schedules bucket and managed through [Client].
type Flow struct {
	// ID names the flow: a token of letters, digits, '-' and '_', at most
	// MaxFlowIDLen bytes.
	ID string
	// Workflow is the workflow each run starts.
	Workflow string
	// InitialState overrides the definition's initial state; "" keeps it.
	InitialState string
	// Input is the run input passed on every run, encoded by [EncodeInput]
	// (one msgpack value; other bytes, JSON among them, are refused).
	Input []byte
	// Schedule says when the flow fires.
	Schedule Schedule
	// Misfire applies to cron flows. "" means MisfireSkip.
	Misfire Misfire
	// Backoff is applied after failed runs. Zero fields get cano's defaults
	// (see [BackoffPolicy]).
	Backoff BackoffPolicy
}

// Status is a flow's phase (cano's scheduler Status).
//
//	stateDiagram-v2
//	    [*] --> Idle
//	    Idle --> Running: fire / trigger
//	    Completed --> Running: fire / trigger
//	    Backoff --> Running: fire after next eligible / trigger
//	    Running --> Completed: run completed
//	    Running --> Backoff: run failed, streak < limit
//	    Running --> Tripped: run failed, streak >= limit
//	    Running --> Idle: run cancelled
//	    Backoff --> Idle: reset
//	    Tripped --> Idle: reset
type Status string

// Flow statuses.
const (
	StatusIdle      Status = "idle"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusBackoff   Status = "backoff"
	StatusTripped   Status = "tripped"
)

// Statuses returns every status.
func Statuses() []Status {
	return []Status{StatusIdle, StatusRunning, StatusCompleted, StatusBackoff, StatusTripped}
}

// FlowInfo is a flow with its persisted status (cano's FlowInfo).
type FlowInfo struct {
	Flow   Flow
	Status Status
	// RunCount counts runs started (scheduled and triggered).
	RunCount uint64
	// LastRun is when the last run started; zero if never.
	LastRun time.Time
	// LastSlot is the last cron slot handled (fired or skipped).
	LastSlot time.Time
	// CurrentRun is the run id while Status is StatusRunning.
	CurrentRun string
	// FailureStreak counts consecutive failed runs.
	FailureStreak uint32
	// NextEligible is the earliest time the next scheduled run may start
	// (the end of a backoff window, or of an Every flow's interval); zero
	// means now.
	NextEligible time.Time
	// LastError is the error of the last failed run, cleared by a success.
	LastError string
	// SkippedFires counts scheduled fires that did not start a run because
	// the flow was running, backing off or tripped (not slots passed while
	// paused).
	SkippedFires uint64
	// Paused reports whether the flow is paused ([Client.Pause]): its
	// schedule fires nothing, a manual trigger still runs it.
	Paused bool
	// PausedAt is when the flow was paused; zero if not paused.
	PausedAt time.Time
	// NextSlot is, for a cron flow, the first slot of its schedule after
	// the moment [Client.Status] or [Client.List] read it (UTC; the
	// schedule's time zone applies to the expression); zero for other
	// kinds. The slot starts a run unless the flow is then paused,
	// running, backing off (NextEligible) or tripped.
	NextSlot time.Time
}

// StatusLabel is Status for people: "paused" for a paused flow that is idle
// or completed, "paused, <status>" for a paused flow that is running,
// backing off or tripped, and the status otherwise.
func (i FlowInfo) StatusLabel() string {
	if !i.Paused {
		return string(i.Status)
	}
	switch i.Status {
	case StatusIdle, StatusCompleted, "":
		return "paused"
	}
	return "paused, " + string(i.Status)
}

// plan is a flow's compiled schedule.
type plan struct {
	kind  Kind
	cron  cron.Schedule // KindCron
	every time.Duration // KindEvery; or the aligned @every period of a cron flow
}

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// compile validates f and compiles its schedule. Errors wrap
// [ErrInvalidFlow] and name the field.
func compile(f *Flow) (plan, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: flow %q: %s", ErrInvalidFlow, f.ID, fmt.Sprintf(format, a...))
	}
	if err := protocol.ValidToken(f.ID); err != nil {
		return plan{}, bad("ID: %v", err)
	}
	if len(f.ID) > MaxFlowIDLen {
		return plan{}, bad("ID longer than %d bytes", MaxFlowIDLen)
	}
	if err := protocol.ValidToken(f.Workflow); err != nil {
		return plan{}, bad("Workflow: %v", err)
	}
	if len(f.InitialState) > protocol.MaxNameLen {
		return plan{}, bad("InitialState longer than %d bytes", protocol.MaxNameLen)
	}
	if len(f.Input) > 0 {
		if err := wirecodec.CheckValue(f.Input); err != nil {
			if json.Valid(f.Input) {
				return plan{}, bad("Input holds JSON, but a flow's input is msgpack: pass scheduler.EncodeInput(v) of the value (decode JSON text into a Go value first)")
			}
			return plan{}, bad("Input is not one msgpack value (%v): pass scheduler.EncodeInput(v)", err)
		}
	}
	switch f.Misfire {
	case "", MisfireSkip, MisfireCatchUp:
	default:
		return plan{}, bad("unknown Misfire %q (want %q or %q)", f.Misfire, MisfireSkip, MisfireCatchUp)
	}
	if err := f.Backoff.validate(); err != nil {
		return plan{}, bad("%v", err)
	}
	s := f.Schedule
	switch s.Kind {
	case KindCron:
		if s.Every != 0 {
			return plan{}, bad("Schedule.Every set on a cron schedule")
		}
		sched, err := parseCron(s.Cron, s.TimeZone)
		if err != nil {
			return plan{}, bad("%v", err)
		}
		p := plan{kind: KindCron, cron: sched}
		if cd, ok := sched.(cron.ConstantDelaySchedule); ok {
			p.every = cd.Delay
		}
		return p, nil
	case KindEvery:
		if s.Every <= 0 {
			return plan{}, bad("Schedule.Every must be positive, got %s", s.Every)
		}
		if s.Cron != "" || s.TimeZone != "" {
			return plan{}, bad("Schedule.Cron or TimeZone set on an every schedule")
		}
		return plan{kind: KindEvery, every: s.Every}, nil
	case KindManual:
		if s.Cron != "" || s.Every != 0 || s.TimeZone != "" {
			return plan{}, bad("Schedule.Cron, Every or TimeZone set on a manual schedule")
		}
		return plan{kind: KindManual}, nil
	default:
		return plan{}, bad("unknown Schedule.Kind %q", s.Kind)
	}
}

// parseCron parses expr in tz ("" = UTC).
func parseCron(expr, tz string) (cron.Schedule, error) {
	if expr == "" {
		return nil, fmt.Errorf("invalid cron expression: empty")
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid cron expression %q: %v", expr, err)
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		switch {
		case tz != "":
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return nil, fmt.Errorf("invalid time zone %q: %v", tz, err)
			}
			spec.Location = loc
		case spec.Location == time.Local:
			spec.Location = time.UTC
		}
	}
	if sched.Next(time.Unix(0, 0).UTC()).IsZero() && sched.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("invalid cron expression %q: it never fires", expr)
	}
	return sched, nil
}

// next returns the first slot strictly after t, or the zero time when there
// is none (manual and every flows have no slots).
func (p plan) next(t time.Time) time.Time {
	if p.kind != KindCron {
		return time.Time{}
	}
	if p.every > 0 {
		// @every: align on the Unix epoch so the slots do not depend on
		// when a leader started.
		n := t.UnixNano()
		d := p.every.Nanoseconds()
		return time.Unix(0, (n/d+1)*d).UTC()
	}
	return p.cron.Next(t).UTC()
}

// latestMissed returns the latest slot s with after < s <= now, or zero.
// It gives up (zero) after limit slots, so a years-long gap is skipped.
func (p plan) latestMissed(after, now time.Time, limit int) time.Time {
	var last time.Time
	for s, i := p.next(after), 0; !s.IsZero() && !s.After(now); s, i = p.next(s), i+1 {
		if i >= limit {
			return time.Time{}
		}
		last = s
	}
	return last
}

// toWire converts f (already compiled) to the stored form.
func (f *Flow) toWire(version uint64) *protocol.Schedule {
	misfire := protocol.MisfireSkip
	if f.Misfire == MisfireCatchUp {
		misfire = protocol.MisfireCatchUp
	}
	s := &protocol.Schedule{
		V:            protocol.SchemaVersion,
		ID:           f.ID,
		Kind:         protocol.FlowKind(f.Schedule.Kind),
		Workflow:     f.Workflow,
		InitialState: f.InitialState,
		Input:        f.Input,
		Cron:         f.Schedule.Cron,
		Every:        int64(f.Schedule.Every),
		TimeZone:     f.Schedule.TimeZone,
		Misfire:      misfire,
		Backoff:      f.Backoff.toWire(),
		Version:      version,
	}
	return s
}

// flowFromWire converts a stored schedule to a Flow.
func flowFromWire(s *protocol.Schedule) Flow {
	misfire := MisfireSkip
	if s.Misfire == protocol.MisfireCatchUp {
		misfire = MisfireCatchUp
	}
	return Flow{
		ID:           s.ID,
		Workflow:     s.Workflow,
		InitialState: s.InitialState,
		Input:        s.Input,
		Schedule: Schedule{
			Kind:     Kind(s.Kind),
			Cron:     s.Cron,
			Every:    time.Duration(s.Every),
			TimeZone: s.TimeZone,
		},
		Misfire: misfire,
		Backoff: backoffFromWire(s.Backoff),
	}
}

// infoFromWire builds a FlowInfo from a stored flow and status (st may be nil).
func infoFromWire(s *protocol.Schedule, st *protocol.FlowStatus) FlowInfo {
	info := FlowInfo{Flow: flowFromWire(s), Status: StatusIdle}
	if st == nil {
		return info
	}
	t := func(ns int64) time.Time {
		if ns == 0 {
			return time.Time{}
		}
		return time.Unix(0, ns).UTC()
	}
	info.Status = Status(st.Phase)
	info.RunCount = st.RunCount
	info.LastRun = t(st.LastRun)
	info.LastSlot = t(st.LastSlot)
	info.CurrentRun = st.CurrentRun
	info.FailureStreak = st.FailureStreak
	info.NextEligible = t(st.NextEligible)
	info.LastError = st.LastError
	info.SkippedFires = st.SkippedFires
	info.Paused = st.PausedAt != 0
	info.PausedAt = t(st.PausedAt)
	return info
}
