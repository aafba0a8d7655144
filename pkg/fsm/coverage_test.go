package fsm_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestErrorInfoRoundTrip(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		err      error
		category protocol.ErrorCategory
		message  string
		is       error
		back     string // the rebuilt error's text, when checked
	}{
		{"plain", boom, protocol.CategoryTaskExecution, "boom", fsm.ErrTaskExecution, ""},
		{"permanent", fsm.Permanent(boom), protocol.CategoryPermanent, "boom", fsm.ErrPermanent, ""},
		{"permanent category error keeps its category", fsm.Permanent(fsm.NewError(protocol.CategoryStore, "kv down")),
			protocol.CategoryStore, "store: kv down", fsm.ErrStore, ""},
		{"category error with cause", &fsm.Error{Category: protocol.CategoryTimeout, Cause: boom},
			protocol.CategoryTimeout, "timeout: boom", fsm.ErrTimeout, ""},
		{"wrapped sentinel", errors.Join(fsm.ErrCircuitOpen), protocol.CategoryCircuitOpen, "", fsm.ErrCircuitOpen, ""},
		{"retry exhausted", &fsm.RetryExhaustedError{Attempts: 3, Cause: boom}, protocol.CategoryRetryExhausted,
			"retry_exhausted: task failed after 3 attempt(s): boom", fsm.ErrRetryExhausted, ""},
		{"retry exhausted made by hand keeps its words", fsm.NewError(protocol.CategoryRetryExhausted, "gateway down"),
			protocol.CategoryRetryExhausted, "", fsm.ErrRetryExhausted, "retry_exhausted: task failed after 0 attempt(s): gateway down"},
		{"retry exhausted without a cause", &fsm.RetryExhaustedError{Attempts: 2}, protocol.CategoryRetryExhausted,
			"retry_exhausted: task failed after 2 attempt(s)", fsm.ErrRetryExhausted, "retry_exhausted: task failed after 2 attempt(s)"},
		{"state context", &fsm.StateError{State: "s", Attempt: 2, Path: []string{"a", "s"}, Cause: fsm.NewError(protocol.CategoryWorkflow, "w")},
			protocol.CategoryWorkflow, "workflow: w", fsm.ErrWorkflow, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			info := fsmbridge.ErrorInfo(tc.err)
			require.Equal(t, tc.category, info.Category)
			if tc.message != "" {
				require.Equal(t, tc.message, info.Message)
			}
			back := fsmbridge.FromErrorInfo(info)
			require.ErrorIs(t, back, tc.is)
			require.NotEmpty(t, back.Error())
			if tc.back != "" {
				require.Equal(t, tc.back, back.Error())
			}
		})
	}
	require.Nil(t, fsmbridge.ErrorInfo(nil))
	require.Nil(t, fsmbridge.FromErrorInfo(nil))
	require.NoError(t, fsm.Permanent(nil))
	var se *fsm.StateError
	require.ErrorAs(t, fsmbridge.FromErrorInfo(&protocol.ErrorInfo{Category: protocol.CategoryWorkflow, Message: "x", State: "s", Attempts: 2}), &se)
	require.Equal(t, uint32(2), se.Attempt)
	require.Contains(t, se.Error(), `in state "s"`)
}

type prepNode struct {
	Base int `msgpack:"base"`
}

func (prepNode) Kind() string { return "prep_node" }
func (n prepNode) Prep(_ context.Context, tc *fsm.TaskContext) (int, error) {
	if n.Base < 0 {
		return 0, errors.New("negative base")
	}
	return n.Base, nil
}
func (prepNode) Exec(_ context.Context, p int) int { return p * 2 }
func (prepNode) Post(_ context.Context, _ *fsm.TaskContext, e int) (fsm.Result, error) {
	return fsm.NextWith(Done, e), nil
}
func (prepNode) Config() fsm.TaskConfig { return fsm.Minimal() }

func TestRegistry(t *testing.T) {
	t.Parallel()
	var reg fsm.Registry
	fsm.Register[noop](&reg)
	fsm.RegisterNode[prepNode, int, int](&reg)
	require.NoError(t, reg.RegisterFunc("func_kind", func([]byte) (fsm.Task, error) {
		return fsm.TaskFunc{KindName: "func_kind", Func: func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
			return fsm.Next(B), nil
		}}, nil
	}))
	shared := fsm.TaskFunc{KindName: "shared_kind", Func: func(context.Context, *fsm.TaskContext) (fsm.Result, error) { return fsm.Next(B), nil }}
	require.NoError(t, reg.RegisterTask(shared))
	require.ErrorContains(t, reg.RegisterTask(shared), "registered twice")
	require.ErrorContains(t, reg.RegisterTask(nil), "nil task")
	built, err := fsmbridge.BuildTask(&reg, &protocol.TaskSpec{Kind: "shared_kind"})
	require.NoError(t, err)
	require.Equal(t, "shared_kind", built.Kind(), "every command runs the registered value")
	require.Equal(t, []string{"func_kind", "noop", "prep_node", "shared_kind"}, reg.Kinds())
	require.True(t, reg.Has("noop"))
	require.False(t, reg.Has("nope"))
	require.Panics(t, func() { fsm.Register[noop](&reg) }, "a kind registered twice")
	require.Panics(t, func() { fsm.RegisterNode[prepNode, int, int](&reg) })
	require.Error(t, reg.RegisterFunc("bad kind", nil))
	_, err = fsmbridge.BuildTask(&reg, &protocol.TaskSpec{Kind: "nope"})
	require.ErrorIs(t, err, fsm.ErrUnknownKind)

	// A node travels as its own parameters and runs prep → exec → post.
	wf := fsm.New[St]("nodes", A).Register(A, fsm.NodeTask[prepNode, int, int](prepNode{Base: 21})).Exit(Done)
	d, err := wf.Definition()
	require.NoError(t, err)
	spec := d.States[0].Task
	require.Equal(t, "prep_node", spec.Kind)
	require.Equal(t, protocol.RetryNone, spec.Retry.Mode, "the node's own config")
	task, err := fsmbridge.BuildTask(&reg, spec)
	require.NoError(t, err)
	tc := newTaskContext(&protocol.TaskCommand{RunID: "r", Branch: -1}, 1, 1, nil, nil)
	res, err := task.Run(context.Background(), tc)
	require.NoError(t, err)
	require.Equal(t, "done", res.NextState())
	require.Equal(t, 42, res.Output())
	require.False(t, isSplit(res))
	_, err = fsm.NodeTask[prepNode, int, int](prepNode{Base: -1}).Run(context.Background(), tc)
	require.ErrorContains(t, err, "negative base")

	fn, err := fsmbridge.BuildTask(&reg, &protocol.TaskSpec{Kind: "func_kind"})
	require.NoError(t, err)
	require.Equal(t, "func_kind", fn.Kind())
	res, err = fn.Run(context.Background(), tc)
	require.NoError(t, err)
	require.Equal(t, "b", res.NextState())

	// Machines list their kinds and check them against a registry.
	kindsDef, err := fsm.New[St]("kinds", A).Register(A, noop{}).
		RegisterSplit(B, []fsm.Task{fsm.NodeTask[prepNode, int, int](prepNode{}), noop{}}, fsm.JoinConfig[St]{Strategy: join.All(), JoinState: Done}).Exit(Done).Definition()
	require.NoError(t, err)
	m, err := engine.Compile(kindsDef)
	require.NoError(t, err)
	require.Equal(t, []string{"noop", "prep_node"}, m.Kinds())
	require.NoError(t, m.CheckKinds(&reg))
	var small fsm.Registry
	fsm.Register[noop](&small)
	require.ErrorIs(t, m.CheckKinds(&small), fsm.ErrConfiguration)
	require.Equal(t, "kinds", fsm.New[St]("kinds", A).Name())
}

func TestTaskContextInput(t *testing.T) {
	t.Parallel()
	type in struct {
		N int `msgpack:"n" json:"n"`
	}
	for _, tc := range []struct {
		name    string
		cmd     protocol.TaskCommand
		loader  func(context.Context) ([]byte, protocol.InputFormat, error)
		want    int
		wantErr string
	}{
		{name: "msgpack", cmd: protocol.TaskCommand{Input: []byte{0x81, 0xa1, 'n', 5}}, want: 5},
		{name: "json", cmd: protocol.TaskCommand{Input: []byte(`{"n":6}`), InputFormat: protocol.InputJSON}, want: 6},
		{name: "bad json", cmd: protocol.TaskCommand{Input: []byte(`{`), InputFormat: protocol.InputJSON}, wantErr: "decode json input"},
		{name: "none leaves v alone", want: 0},
		{name: "from the record", loader: func(context.Context) ([]byte, protocol.InputFormat, error) {
			return []byte(`{"n":7}`), protocol.InputJSON, nil
		}, want: 7},
		{name: "record gone", loader: func(context.Context) ([]byte, protocol.InputFormat, error) {
			return nil, "", fsm.Permanent(errors.New("gone"))
		}, wantErr: "gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := tc.cmd
			cmd.Branch = -1
			tcx := fsmbridge.NewTaskContext(fsmbridge.TaskContextParams{Cmd: &cmd, Attempt: 1, MaxAttempts: 1, LoadInput: tc.loader})
			var v in
			err := tcx.Input(&v)
			_, _, rawErr := tcx.RawInput()
			if tc.wantErr != "" {
				require.ErrorIs(t, err, fsm.ErrPermanent)
				require.ErrorContains(t, err, tc.wantErr)
				if tc.loader != nil {
					require.Error(t, rawErr)
				}
				return
			}
			require.NoError(t, err)
			require.NoError(t, rawErr)
			require.Equal(t, tc.want, v.N)
		})
	}
}

func TestTaskContextBranches(t *testing.T) {
	t.Parallel()
	tc := newTaskContext(&protocol.TaskCommand{Branch: -1}, 1, 1, nil, nil)
	_, err := tc.Branches(context.Background())
	require.ErrorIs(t, err, fsm.ErrNotJoin)
	want := []fsm.BranchOutcome{{Index: 0, Status: protocol.BranchSucceeded, Output: []byte{1}}}
	tc = newTaskContext(&protocol.TaskCommand{Branch: -1}, 1, 1, nil,
		func(context.Context) ([]fsm.BranchOutcome, error) { return want, nil })
	got, err := tc.Branches(context.Background())
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = fsm.BranchOutput[int](fsm.BranchOutcome{Index: 1, Status: protocol.BranchFailed})
	require.ErrorContains(t, err, "branch 1 has no output")
}

func TestResultAndOutput(t *testing.T) {
	t.Parallel()
	r := fsm.Next(B)
	require.Equal(t, "b", r.NextState())
	require.Nil(t, r.Output())
	spec, err := fsmbridge.SplitSpec(r)
	require.NoError(t, err)
	require.Nil(t, spec)
	r = fsm.SplitInto(fsm.JoinConfig[St]{Strategy: join.Quorum(1), JoinState: C}, noop{Name: "x"}, noop{Name: "y"})
	require.True(t, isSplit(r))
	spec, err = fsmbridge.SplitSpec(r)
	require.NoError(t, err)
	require.Equal(t, 2, spec.Len())
	_, err = fsmbridge.SplitSpec(fsm.SplitInto(fsm.JoinConfig[St]{JoinState: C}, nil))
	require.ErrorContains(t, err, "split branch 0")

	out, err := engine.EncodeOutput(nil)
	require.NoError(t, err)
	require.Nil(t, out)
	out, err = engine.EncodeOutput([]byte{1, 2})
	require.NoError(t, err)
	var b []byte
	require.NoError(t, engine.DecodeOutput(out, &b))
	require.Equal(t, []byte{1, 2}, b)
	_, err = engine.EncodeOutput(make(chan int))
	require.Error(t, err)
}

// goTo is a task whose parameter says where to go.
type goTo struct {
	Next St `msgpack:"next"`
}

func (goTo) Kind() string { return "go_to" }
func (g goTo) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(string(g.Next)), nil
}

// TestRegisterTaskIgnoredParams checks that a workflow whose task carries
// parameters is refused by a registry that runs one fixed value for its
// kind (RegisterTask), with what to do instead; and that the ways that do
// reach the parameters pass.
func TestRegisterTaskIgnoredParams(t *testing.T) {
	t.Parallel()
	wf := fsm.New[St]("param_wf", A).Register(A, goTo{Next: Done}).Exit(Done)
	def, err := wf.Definition()
	require.NoError(t, err)
	m, err := engine.Compile(def)
	require.NoError(t, err)
	count := fsm.TaskFunc{KindName: "count", Func: func(context.Context, *fsm.TaskContext) (fsm.Result, error) {
		return fsm.Next(string(Done)), nil
	}}
	fnDef, err := fsm.New[St]("func_wf", A).Register(A, count).Exit(Done).Definition()
	require.NoError(t, err)
	fnMachine, err := engine.Compile(fnDef)
	require.NoError(t, err)

	// Branches of one kind travel in a split's compact form (no Tasks).
	branches := make([]fsm.Task, fsm.CompactSplitMin+1)
	for i := range branches {
		branches[i] = goTo{Next: Done}
	}
	splitDef, err := fsm.New[St]("param_split", A).RegisterSplit(A, branches,
		fsm.JoinConfig[St]{Strategy: join.All(), JoinState: Done}).Exit(Done).Definition()
	require.NoError(t, err)
	require.NotNil(t, splitDef.States[0].Split.Common, "the compact form")
	splitMachine, err := engine.Compile(splitDef)
	require.NoError(t, err)

	for _, tc := range []struct {
		name     string
		register func(*fsm.Registry) error
		machine  *engine.Machine
		wantErr  string
	}{
		{"RegisterTask with the zero value: the workflow's parameters would be lost",
			func(r *fsm.Registry) error { return r.RegisterTask(goTo{}) }, m,
			`workflow "param_wf", state "a": task kind "go_to" was registered with RegisterTask, which runs the value it was given for every command and ignores the parameters a workflow gives it (here map[next:done]): register the type with fsm.Register[T]`},
		{"RegisterTask with the zero value, under a compact split",
			func(r *fsm.Registry) error { return r.RegisterTask(goTo{}) }, splitMachine,
			`workflow "param_split", state "a": task kind "go_to" was registered with RegisterTask`},
		{"RegisterTask with the workflow's own value",
			func(r *fsm.Registry) error { return r.RegisterTask(goTo{Next: Done}) }, m, ""},
		{"Register[T] decodes each command's parameters",
			func(r *fsm.Registry) error { return fsm.RegisterSafely[goTo](r) }, m, ""},
		{"RegisterTask with a TaskFunc, which has no parameters",
			func(r *fsm.Registry) error { return r.RegisterTask(count) }, fnMachine, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var reg fsm.Registry
			require.NoError(t, tc.register(&reg))
			err := tc.machine.CheckKinds(&reg)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, fsm.ErrConfiguration)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// byValue's methods have value receivers; registered as *byValue, a nil
// pointer would panic in them.
type byValue struct {
	N int `msgpack:"n"`
}

func (byValue) Kind() string { return "by_value" }
func (b byValue) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(Done, b.N), nil
}

// kindPanics reads a field in Kind: a nil pointer panics there.
type kindPanics struct{ inner *byValue }

func (k *kindPanics) Kind() string { return k.inner.Kind() }
func (*kindPanics) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}

func TestRegisterPointerTypes(t *testing.T) {
	t.Parallel()
	var reg fsm.Registry
	require.NoError(t, fsm.RegisterSafely[*byValue](&reg), "a pointer to a type with value methods")
	tc := newTaskContext(&protocol.TaskCommand{RunID: "r", Branch: -1}, 1, 1, nil, nil)
	for _, c := range []struct {
		name   string
		params any
		want   int
	}{
		{"no parameters: a new zero value, not nil", nil, 0},
		{"parameters decoded into a new value", byValue{N: 3}, 3},
	} {
		spec := &protocol.TaskSpec{Kind: "by_value"}
		if c.params != nil {
			spec.Params = mustEncode(t, c.params)
		}
		task, err := fsmbridge.BuildTask(&reg, spec)
		require.NoError(t, err, c.name)
		require.NotNil(t, task.(*byValue), c.name)
		res, err := task.Run(context.Background(), tc)
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, res.Output(), c.name)
	}

	err := fsm.RegisterSafely[*kindPanics](&reg)
	require.ErrorContains(t, err, "*fsm_test.kindPanics: its Kind method panicked on the type's zero value")
	require.ErrorContains(t, err, "Kind must return a constant kind name")
	require.ErrorContains(t, fsm.RegisterSafely[fsm.Task](&reg), "its Kind method panicked", "an interface type has no zero value to ask")
	require.Equal(t, []string{"by_value"}, reg.Kinds())
}
