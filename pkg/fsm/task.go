package fsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cano-nats/cano/internal/fsmbridge/hooks"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Task is one unit of work. Its Kind is a stable name put on the wire (never
// rename it in place); its exported fields are its parameters, encoded with
// msgpack into the workflow definition so that any worker that knows the
// kind can rebuild the value and run it. Unexported fields do not travel:
// registering a task whose unexported field holds a value, or whose field
// msgpack cannot encode, fails the workflow with [ErrConfiguration].
// Dependencies such as clients and pools belong in the worker's resources
// ([TaskContext].Resources).
//
// Run returns the next state through [Next] (or [NextWith] to hand an
// output on, or [SplitInto] for a dynamic split). The error steers the
// worker: nil → done; an ordinary error → retried per the task's
// [RetryMode]; [Permanent](err) → failed without retrying. A panic fails the
// task with a task-execution error and is not retried, as in cano.
//
// ctx ends when the attempt should stop; context.Cause(ctx) says why:
// it matches [ErrTimeout] (errors.Is) when the attempt timeout passed,
// [ErrCancelled] when the run or its split branch was cancelled, and is
// the worker's stop otherwise.
type Task interface {
	Kind() string
	Run(ctx context.Context, tc *TaskContext) (Result, error)
}

// TaskWithConfig is implemented by tasks that carry their own default
// [TaskConfig] (cano's Task::config). A config given at registration wins.
type TaskWithConfig interface {
	Task
	Config() TaskConfig
}

// TaskFunc adapts a function to a Task of the given kind. Its parameters
// cannot travel, so it suits tasks whose behaviour needs none.
type TaskFunc struct {
	KindName string                                                     `msgpack:"-"`
	Func     func(ctx context.Context, tc *TaskContext) (Result, error) `msgpack:"-"`
}

// Kind returns f.KindName.
func (f TaskFunc) Kind() string { return f.KindName }

// Run calls f.Func.
func (f TaskFunc) Run(ctx context.Context, tc *TaskContext) (Result, error) { return f.Func(ctx, tc) }

// TaskConfig is a task's attempt policy. The zero value is cano's default:
// exponential retry (4 attempts), no attempt timeout, no breaker.
type TaskConfig struct {
	// Retry is the retry mode. Zero means RetryExponential(3).
	Retry RetryMode
	// AttemptTimeout bounds each attempt; 0 means none.
	AttemptTimeout time.Duration
	// Breaker names a circuit breaker shared by every worker; "" means none.
	// It is checked before each attempt: while it is open the attempt is
	// not made and the task fails at once with ErrCircuitOpen (no retry, as
	// in cano). Every attempt that returns an error counts as a failure,
	// every other one as a success.
	Breaker string
	// BreakerPolicy configures the named breaker when a worker process
	// first uses it; nil, like a zero field, means the breaker defaults (5
	// consecutive failures open it for 30 s, then 1 probe):
	//
	//	BreakerPolicy: &breaker.Policy{FailureThreshold: 3, ResetTimeout: 10 * time.Second}
	//
	// Give every state that names one breaker the same policy: a process
	// keeps the first it sees, and logs a warning for the others.
	BreakerPolicy *breaker.Policy
}

// Minimal is a TaskConfig of one attempt (no retries) and nothing else:
// no attempt timeout, no breaker (cano's TaskConfig::minimal()).
func Minimal() TaskConfig { return TaskConfig{Retry: RetryNone()} }

// Result is what a task returns: the next state, an optional output, or a
// dynamic split. Build it with [Next], [NextWith] or [SplitInto].
type Result struct {
	next   string
	output any
	split  *dynamicSplit
}

type dynamicSplit struct {
	tasks []Task
	cfg   JoinConfig[string] // as given (Result.Split); its spec goes on the wire
}

// Next moves the run to state.
func Next[S ~string](state S) Result { return Result{next: string(state)} }

// NextWith moves the run to state and hands output on: the next state's task
// reads it with [TaskContext.Previous]; it becomes the run's output when
// state is an exit state, and a split branch's output for the join state
// to read ([TaskContext.Branches]). output is encoded with the canonical
// value codec ([wirecodec.EncodeValue]); its encoding counts against the
// task result's payload limit (worker Config.MaxPayload): a larger one
// fails the task with an error that says so.
func NextWith[S ~string](state S, output any) Result {
	return Result{next: string(state), output: output}
}

// SplitInto ends the task with a dynamic split: the branch tasks (decided at
// run time) run in parallel on any workers and are joined by cfg, exactly
// like a static split. Each branch task's config comes from its
// [TaskWithConfig] method, or the default.
func SplitInto[S ~string](cfg JoinConfig[S], tasks ...Task) Result {
	given := JoinConfig[string]{Strategy: cfg.Strategy, JoinState: string(cfg.JoinState),
		Timeout: cfg.Timeout, Bulkhead: cfg.Bulkhead}
	return Result{split: &dynamicSplit{tasks: tasks, cfg: given}}
}

// NextState is the state the result names ("" for a split: see
// [Result.Split]).
func (r Result) NextState() string { return r.next }

// Split returns the branch tasks and the join configuration of a dynamic
// split ([SplitInto]), with the join state as a string, so that a unit test
// can check what a task fans out to:
//
//	tasks, cfg, ok := res.Split()
//	require.True(t, ok)
//	require.Equal(t, []fsm.Task{Ask{Supplier: "a"}, Ask{Supplier: "b"}}, tasks)
//	require.Equal(t, "collect", cfg.JoinState)
//
// ok is false, and tasks nil, when r is not a split. The slice is a copy.
func (r Result) Split() (tasks []Task, cfg JoinConfig[string], ok bool) {
	if r.split == nil {
		return nil, JoinConfig[string]{}, false
	}
	return append([]Task(nil), r.split.tasks...), r.split.cfg, true
}

// Output is the value handed on, if any.
func (r Result) Output() any { return r.output }

// splitSpec encodes a dynamic split's branches and join for the wire (nil
// when r is not a split).
func (r Result) splitSpec() (*protocol.SplitSpec, error) {
	if r.split == nil {
		return nil, nil
	}
	spec := &protocol.SplitSpec{Join: r.split.cfg.spec(), Tasks: make([]protocol.TaskSpec, len(r.split.tasks))}
	for i, t := range r.split.tasks {
		if t != nil {
			if err := configOf(t, nil).check(); err != nil {
				return nil, fmt.Errorf("fsm: split branch %d (%s): %w: %w", i, t.Kind(), ErrConfiguration, err)
			}
		}
		ts, err := taskSpec(t, nil)
		if err != nil {
			return nil, fmt.Errorf("fsm: split branch %d: %w", i, err)
		}
		spec.Tasks[i] = ts
	}
	spec.Compact()
	return spec, nil
}

// JoinConfig configures how a split's branches are joined.
type JoinConfig[S ~string] struct {
	// Strategy decides the join; the zero value is join.All().
	Strategy join.Strategy
	// JoinState is entered when the join succeeds.
	JoinState S
	// Timeout bounds the split (bulkhead queueing included); 0 means none.
	// It is a durable timer: it survives every process restart.
	Timeout time.Duration
	// Bulkhead is the most branches in flight at once across all workers;
	// 0 means no limit.
	Bulkhead int
}

func (c JoinConfig[S]) spec() protocol.JoinSpec {
	s := c.Strategy.Spec()
	s.JoinState = string(c.JoinState)
	s.Timeout = int64(c.Timeout)
	if c.Bulkhead > 0 {
		s.Bulkhead = uint32(c.Bulkhead)
	}
	return s
}

// TaskContext is what a running task sees of its run. It is valid only
// during Run.
type TaskContext struct {
	RunID    string
	Workflow string
	State    string
	Step     uint32
	// Branch is the split branch index, or -1 outside a split.
	Branch int
	// Attempt counts from 1; MaxAttempts is the policy's limit. To
	// compensate for a failure once the attempts are spent, route the
	// state's failures with [Workflow.OnFailure] rather than returning
	// another state on the last attempt: routing also covers an open
	// breaker, an attempt timeout and a panic.
	Attempt     int
	MaxAttempts int
	// Logger carries run attributes (run_id, workflow, state, attempt).
	Logger *slog.Logger
	// Resources are the worker's resources; Store is the shared store
	// scoped to this run (kvstore.RunScope): its keys are this run's
	// alone, and are removed after the run ends. For keys that outlive the
	// run or that other runs share (a scheduled job's cursor, a counter
	// across runs), use [TaskContext.StoreIn]. Both may be nil in unit
	// tests.
	Resources *kvstore.Resources
	Store     kvstore.Store

	input       []byte
	inputFormat protocol.InputFormat
	branches    func(ctx context.Context) ([]BranchOutcome, error)
	// loadInput reads an input the command left in the run record, once,
	// on first use (see protocol.TaskCommand.InputInRecord).
	loadInput func(ctx context.Context) ([]byte, protocol.InputFormat, error)
	inputOnce sync.Once
	inputErr  error

	previous []byte
	// loadPrevious reads a previous output the command left in the run
	// record, once, on first use (protocol.TaskCommand.PreviousInRecord).
	loadPrevious func(ctx context.Context) ([]byte, error)
	previousOnce sync.Once
	previousErr  error
}

// inputLoadTimeout bounds reading an input left in the run record,
// retries included: a KV leader change takes a few seconds.
const inputLoadTimeout = 30 * time.Second

func (tc *TaskContext) ensureInput() error {
	if tc.loadInput == nil {
		return nil
	}
	tc.inputOnce.Do(func() {
		tc.inputErr = loadRetrying("the run input", func(ctx context.Context) (err error) {
			tc.input, tc.inputFormat, err = tc.loadInput(ctx)
			return err
		})
	})
	return tc.inputErr
}

func (tc *TaskContext) ensurePrevious() error {
	if tc.loadPrevious == nil {
		return nil
	}
	tc.previousOnce.Do(func() {
		tc.previousErr = loadRetrying("the previous state's output", func(ctx context.Context) (err error) {
			tc.previous, err = tc.loadPrevious(ctx)
			return err
		})
	})
	return tc.previousErr
}

// loadRetrying calls load until it succeeds, fails permanently, or
// inputLoadTimeout passes (a KV leader change takes a few seconds).
func loadRetrying(what string, load func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), inputLoadTimeout)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		err := load(ctx)
		if err == nil || errors.Is(err, ErrPermanent) {
			return err
		}
		select {
		case <-ctx.Done():
			return NewError(protocol.CategoryStore, "read %s from the run record: %v", what, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// newTaskContext builds a context (the worker does this, through
// internal/fsmbridge).
func newTaskContext(p hooks.TaskContext) *TaskContext {
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cmd := p.Cmd
	tc := &TaskContext{
		RunID: cmd.RunID, Workflow: cmd.Workflow, State: cmd.State, Step: cmd.Step,
		Branch: int(cmd.Branch), Attempt: p.Attempt, MaxAttempts: p.MaxAttempts, Logger: logger,
		input: cmd.Input, inputFormat: cmd.InputFormat, previous: cmd.Previous,
		loadInput: p.LoadInput, loadPrevious: p.LoadPrevious,
	}
	if p.Branches != nil {
		tc.branches = p.Branches.(func(ctx context.Context) ([]BranchOutcome, error))
	}
	return tc
}

// ErrNoPrevious is returned (wrapped, and [Permanent]) by
// [TaskContext.Previous] when the task that moved the run into this state
// handed nothing on: it returned [Next] rather than [NextWith], this is the
// first state, or this is a join state (read [TaskContext.Branches]).
var ErrNoPrevious = errors.New("fsm: no previous output")

// Previous decodes into v the output the previous state's task handed on
// with [NextWith]: the data one state passes to the next, kept in the run
// record, so it survives restarts and reaches whichever worker runs this
// state. With none it returns an error matching [ErrNoPrevious]; a value
// that does not fit v gives a [Permanent] error naming both. The name pairs
// with NextWith: one state hands on, the next reads what came before.
func (tc *TaskContext) Previous(v any) error {
	if err := tc.ensurePrevious(); err != nil {
		return err
	}
	if len(tc.previous) == 0 {
		return Permanent(fmt.Errorf("%w: state %q (step %d): the task that moved the run here returned no output with fsm.NextWith",
			ErrNoPrevious, tc.State, tc.Step))
	}
	if err := wirecodec.DecodeValue(tc.previous, v); err != nil {
		return Permanent(fmt.Errorf("fsm: decode the previous state's output into %T: %w", v, err))
	}
	return nil
}

// Failure returns the failure that moved the run to this state, when the
// previous state's failures are routed here ([Workflow.OnFailure]): a
// [*StateError] naming the state that failed, its attempts and the path,
// around an error of the failure's category (errors.Is with ErrTimeout,
// ErrCircuitOpen, ErrRetryExhausted, ...; a join timeout is ErrWorkflow, see
// the package's Errors). It returns nil when the run came here any other way.
//
//	if f := tc.Failure(); f != nil {
//		tc.Logger.Warn("charge failed for good; releasing the stock", "err", f)
//	}
func (tc *TaskContext) Failure() error {
	if err := tc.ensurePrevious(); err != nil || len(tc.previous) == 0 {
		return nil
	}
	var out protocol.FailureOutput
	if wirecodec.DecodeValue(tc.previous, &out) != nil || out.Failure == nil {
		return nil
	}
	return fromErrorInfo(out.Failure)
}

// Input decodes the run's input into v. An input sent as JSON (`nats req`,
// canoctl, the dashboard, a client.TriggerOpts.Input of json.RawMessage)
// is decoded with encoding/json; one a Go client sent as a value is
// msgpack, whose struct fields are named by their msgpack tag, else their
// json tag, else their Go name. A struct with json tags therefore reads
// both alike. With no input, v is left unchanged and nil is returned.
func (tc *TaskContext) Input(v any) error {
	if err := tc.ensureInput(); err != nil {
		return err
	}
	if len(tc.input) == 0 {
		return nil
	}
	if tc.inputFormat == protocol.InputJSON {
		if err := json.Unmarshal(tc.input, v); err != nil {
			return Permanent(fmt.Errorf("fsm: decode json input: %w", err))
		}
		return nil
	}
	if err := wirecodec.DecodeValue(tc.input, v); err != nil {
		return Permanent(fmt.Errorf("fsm: decode the run input: %w (the trigger's input must be msgpack or JSON that fits %T)", err, v))
	}
	return nil
}

// StoreIn returns the shared store seen through scope rather than through
// this run's scope: [kvstore.GlobalScope] for keys every run of every
// workflow shares, kvstore.WorkflowScope(tc.Workflow) for keys the runs of
// this workflow share. Those keys are not removed when the run ends. Every
// worker process sees the same keys (the store bucket).
//
//	global := tc.StoreIn(kvstore.GlobalScope())
//	cursor, err := kvstore.GetAs[int](ctx, global, "sync_cursor")
//
// In a unit test (fsmtest) whose Store is not scoped to the run, the scope
// is applied to that Store itself. It returns nil when tc.Store is nil.
func (tc *TaskContext) StoreIn(scope kvstore.Scope) kvstore.Store {
	if tc.Store == nil {
		return nil
	}
	return kvstore.Scoped(unscopedStore(tc.Store, tc.RunID), scope)
}

// unscopedStore returns the store under the run's scope: it unwraps s (a
// worker wraps the run's view) down to the view of RunScope(runID) and
// returns what that view wraps; s itself when there is none.
func unscopedStore(s kvstore.Store, runID string) kvstore.Store {
	run := kvstore.RunScope(runID).Prefix()
	for cur := s; cur != nil; {
		if v, ok := cur.(*kvstore.View); ok && run != "" && v.Scope().Prefix() == run {
			return v.Unwrap()
		}
		u, ok := cur.(interface{ Unwrap() kvstore.Store })
		if !ok {
			break
		}
		cur = u.Unwrap()
	}
	return s
}

// RawInput returns the run input's bytes and format (an error only when an
// input left in the run record could not be read).
func (tc *TaskContext) RawInput() ([]byte, protocol.InputFormat, error) {
	if err := tc.ensureInput(); err != nil {
		return nil, "", err
	}
	return tc.input, tc.inputFormat, nil
}

// BranchOutcome is one split branch's outcome as the join state sees it.
type BranchOutcome struct {
	// Index is the branch's place in the split, from 0.
	Index int
	// Status is how the branch ended: BranchSucceeded, BranchFailed,
	// BranchTimedOut or BranchCancelled (the join did not wait for it).
	Status BranchStatus
	// Output is the msgpack bytes the branch returned with NextWith; read
	// it with [BranchOutput].
	Output []byte
	// Err is a failed or timed-out branch's error.
	Err error
}

// BranchStatus is how a split branch ended, as its join state sees it
// (the wire type, named here so that a join task and its unit tests need
// not import package protocol).
type BranchStatus = protocol.BranchStatus

// Branch statuses.
const (
	BranchSucceeded = protocol.BranchSucceeded
	BranchFailed    = protocol.BranchFailed
	BranchTimedOut  = protocol.BranchTimedOut
	BranchCancelled = protocol.BranchCancelled
)

// ErrNotJoin is returned by [TaskContext.Branches] outside a join state.
var ErrNotJoin = errors.New("fsm: not a join state: no branch outcomes")

// Branches returns every branch outcome of the split this join state
// follows, in branch order: succeeded and failed branches as reported (a
// branch whose last attempt timed out is BranchTimedOut), and the branches
// the join did not wait for as BranchCancelled — unless their outcome was
// recorded by the time of the call, when it is reported as it is (so a
// Quorum(2) of three quick branches may show three succeeded, where the
// run's split summary counts one cancelled: it counts at the join's
// decision). Cancellation reaches a branch's task through its context; a
// task that ignores it may finish later, side effects and all. Compensate
// from what the tasks themselves record (a shared resource, a store key),
// not from BranchCancelled alone.
func (tc *TaskContext) Branches(ctx context.Context) ([]BranchOutcome, error) {
	if tc.branches == nil {
		return nil, ErrNotJoin
	}
	return tc.branches(ctx)
}

// BranchOutput decodes a branch's output into a T. A branch that handed
// nothing on (it failed, timed out or was cancelled, or returned Next
// rather than NextWith) gives an error naming the branch and its status.
func BranchOutput[T any](b BranchOutcome) (T, error) {
	var v T
	if len(b.Output) == 0 {
		return v, fmt.Errorf("fsm: branch %d has no output (status %s)", b.Index, b.Status)
	}
	if err := wirecodec.DecodeValue(b.Output, &v); err != nil {
		return v, fmt.Errorf("fsm: branch %d output: %w", b.Index, err)
	}
	return v, nil
}

// configOf is the config t runs with: cfg when given, else t's own
// (TaskWithConfig), else the zero config.
func configOf(t Task, cfg *TaskConfig) TaskConfig {
	if cfg != nil {
		return *cfg
	}
	if tc, ok := t.(TaskWithConfig); ok {
		return tc.Config()
	}
	return TaskConfig{}
}

// check returns an error that says what to change when c cannot work: a
// negative duration, or a breaker name that is not a NATS-safe token.
// Caught at registration, rather than by every coordinator, which would
// ignore the definition while its triggers wait, or by the breaker store,
// which would admit every call.
func (c TaskConfig) check() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("TaskConfig.%s", fmt.Sprintf(format, args...))
	}
	if c.AttemptTimeout < 0 {
		return fail("AttemptTimeout is negative (%s): use 0 for none, or a positive duration", c.AttemptTimeout)
	}
	p := c.Retry.Policy()
	if p.BaseDelay < 0 || p.MaxDelay < 0 {
		return fail("Retry has a negative delay (%s, at most %s): give RetryFixed or RetryExponentialCustom 0 or more",
			time.Duration(p.BaseDelay), time.Duration(p.MaxDelay))
	}
	if c.Breaker != "" {
		if err := protocol.ValidToken(c.Breaker); err != nil {
			return fail("Breaker: %v: name the breaker with those characters only", err)
		}
	}
	if bp := c.BreakerPolicy; bp != nil {
		if err := bp.Check(); err != nil {
			return fail("BreakerPolicy: %v: leave a field 0 for its default", err)
		}
	}
	return nil
}

// wirePolicy is p's wire form, nil for nil.
func wirePolicy(p *breaker.Policy) *protocol.BreakerPolicy {
	if p == nil {
		return nil
	}
	w := wirecodec.BreakerPolicyToWire(*p)
	return &w
}

func taskSpec(t Task, cfg *TaskConfig) (protocol.TaskSpec, error) {
	if t == nil {
		return protocol.TaskSpec{}, errors.New("nil task")
	}
	c := configOf(t, cfg)
	params, err := wirecodec.EncodeValue(t)
	if err != nil {
		return protocol.TaskSpec{}, fmt.Errorf("encode task %q: %w", t.Kind(), err)
	}
	spec := protocol.TaskSpec{
		Kind:           t.Kind(),
		Params:         params,
		Retry:          c.Retry.Policy(),
		AttemptTimeout: int64(c.AttemptTimeout),
		Breaker:        c.Breaker,
		BreakerPolicy:  wirePolicy(c.BreakerPolicy),
	}
	return spec, nil
}
