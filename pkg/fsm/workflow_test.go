package fsm_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/breaker"
	"github.com/cano-nats/cano/pkg/fsm"
)

type mapTask struct {
	paramTask
	M map[string]int `msgpack:"m"`
}

func TestContentVersion(t *testing.T) {
	t.Parallel()
	big := func() map[string]int {
		m := map[string]int{}
		for i := range 50 {
			m[fmt.Sprintf("k%d", i)] = i
		}
		return m
	}
	base := func() *fsm.Workflow[St] {
		return fsm.New[St]("wf", A).Register(A, mapTask{M: big()}).Exit(Done)
	}
	version := func(w *fsm.Workflow[St]) string {
		d, err := w.Definition()
		require.NoError(t, err)
		return d.Version
	}
	v0 := version(base())
	require.Len(t, v0, engine.ContentVersionLen)
	for _, tc := range []struct {
		name string
		wf   *fsm.Workflow[St]
		same bool
	}{
		{"rebuilt, map iterated afresh", base(), true},
		{"total timeout", base().TotalTimeout(time.Minute), false},
		{"queue", base().Queue("other"), false},
		{"max transitions", base().MaxTransitions(5), false},
		{"another exit", base().Exit(Rejected), false},
		{"task parameters", fsm.New[St]("wf", A).Register(A, mapTask{M: map[string]int{"k0": 1}}).Exit(Done), false},
		{"task config", fsm.New[St]("wf", A).Register(A, mapTask{M: big()}, fsm.Minimal()).Exit(Done), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.same {
				require.Equal(t, v0, version(tc.wf))
			} else {
				require.NotEqual(t, v0, version(tc.wf))
			}
		})
	}
	require.Equal(t, "v7", version(base().Version("v7")), "an explicit version is kept")
	d, err := base().Version("v7").Definition()
	require.NoError(t, err)
	derived, err := engine.ContentVersion(d)
	require.NoError(t, err)
	require.Equal(t, v0, derived, "the version itself is not part of the content")
}

// A state is registered once, and a registered state is not also an exit
// state, whatever the order of the calls.
func TestStateRegisteredOnce(t *testing.T) {
	t.Parallel()
	split := fsm.JoinConfig[St]{JoinState: Done}
	for _, tc := range []struct {
		name string
		wf   *fsm.Workflow[St]
		msg  string
	}{
		{"task twice", fsm.New[St]("w", A).Register(A, noop{}).Register(A, noop{"again"}).Exit(Done),
			`state "a" registered twice`},
		{"task then split", fsm.New[St]("w", A).Register(A, noop{}).RegisterSplit(A, []fsm.Task{noop{}}, split).Exit(Done),
			`state "a" registered twice`},
		{"split then task", fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{noop{}}, split).Register(A, noop{}).Exit(Done),
			`state "a" registered twice`},
		{"task then exit", fsm.New[St]("w", A).Register(A, noop{}).Register(B, noop{}).Exit(Done, B),
			`state "b" is both a registered state and an exit state`},
		{"exit then task", fsm.New[St]("w", A).Exit(Done).Register(A, noop{}).Register(Done, noop{}),
			`state "done" is both a registered state and an exit state`},
		{"exit then split", fsm.New[St]("w", A).Exit(Done, B).Register(A, noop{}).RegisterSplit(B, []fsm.Task{noop{}}, split),
			`state "b" is both a registered state and an exit state`},
		{"exit twice", fsm.New[St]("w", A).Register(A, noop{}).Exit(Done).Exit(Done), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.wf.Validate()
			if tc.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, fsm.ErrConfiguration)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

// TestOnFailureRules: OnFailure's building rules; a workflow that routes a
// failure is a version 3 definition, one that does not stays version 1.
func TestOnFailureRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		wf   *fsm.Workflow[St]
		msg  string
	}{
		{"routed", fsm.New[St]("w", A).Register(A, noop{}).Register(B, noop{}).OnFailure(A, B).Exit(Done), ""},
		{"to an exit", fsm.New[St]("w", A).OnFailure(A, Done).Register(A, noop{}).Exit(Done), ""},
		{"the same twice", fsm.New[St]("w", A).Register(A, noop{}).OnFailure(A, Done).OnFailure(A, Done).Exit(Done), ""},
		{"unregistered state", fsm.New[St]("w", A).Register(A, noop{}).OnFailure(B, Done).Exit(Done),
			`OnFailure("b", …): state "b" is not registered`},
		{"two targets", fsm.New[St]("w", A).Register(A, noop{}).Register(B, noop{}).OnFailure(A, B).OnFailure(A, Done).Exit(Done),
			`state "a": failures routed twice (to "b" and to "done")`},
		{"to itself", fsm.New[St]("w", A).Register(A, noop{}).OnFailure(A, A).Exit(Done), `its failures route to itself`},
		{"to an unknown state", fsm.New[St]("w", A).Register(A, noop{}).OnFailure(A, C).Exit(Done),
			`on failure, state "c" is neither registered nor an exit state`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.wf.Validate()
			if tc.msg == "" {
				require.NoError(t, err)
				d, err := tc.wf.Definition()
				require.NoError(t, err)
				require.EqualValues(t, 3, d.V)
				return
			}
			require.ErrorIs(t, err, fsm.ErrConfiguration)
			require.ErrorContains(t, err, tc.msg)
		})
	}
	d, err := fsm.New[St]("w", A).Register(A, noop{}).Exit(Done).Definition()
	require.NoError(t, err)
	require.EqualValues(t, 1, d.V, "no routed failure: older builds read it")
}

// cfgTask carries its own TaskConfig (TaskWithConfig).
type cfgTask struct {
	noop
	C fsm.TaskConfig `msgpack:"-"`
}

func (c cfgTask) Config() fsm.TaskConfig { return c.C }

// TestTaskConfigChecked: a TaskConfig that cannot work is refused where
// it is given (Register, RegisterSplit, a task's own Config), with what to
// change, instead of reaching coordinators that would ignore the
// definition while its triggers wait.
func TestTaskConfigChecked(t *testing.T) {
	t.Parallel()
	split := fsm.JoinConfig[St]{JoinState: Done}
	for _, tc := range []struct {
		name string
		cfg  fsm.TaskConfig
		msg  string
	}{
		{"negative attempt timeout", fsm.TaskConfig{AttemptTimeout: -time.Second},
			`task for state "a": TaskConfig.AttemptTimeout is negative (-1s): use 0 for none, or a positive duration`},
		{"breaker name with a space", fsm.TaskConfig{Breaker: "pay ments"},
			`TaskConfig.Breaker: protocol: invalid name: "pay ments" has ' ' (allowed: letters, digits, '-', '_'): name the breaker with those characters only`},
		{"negative retry delay", fsm.TaskConfig{Retry: fsm.RetryFixed(2, -time.Second)}, "TaskConfig.Retry has a negative delay"},
		{"negative breaker reset", fsm.TaskConfig{Breaker: "b", BreakerPolicy: &breaker.Policy{ResetTimeout: -time.Second}},
			"TaskConfig.BreakerPolicy: breaker: invalid settings: ResetTimeout -1s: must not be negative: leave a field 0 for its default"},
		{"breaker probes out of range", fsm.TaskConfig{Breaker: "b", BreakerPolicy: &breaker.Policy{HalfOpenMaxCalls: -1}},
			"TaskConfig.BreakerPolicy: breaker: invalid settings: HalfOpenMaxCalls -1"},
		{"fine", fsm.TaskConfig{AttemptTimeout: time.Second, Breaker: "pay-ments_1", Retry: fsm.RetryFixed(2, 0),
			BreakerPolicy: &breaker.Policy{ResetTimeout: time.Second}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, wf := range []*fsm.Workflow[St]{
				fsm.New[St]("w", A).Register(A, noop{}, tc.cfg).Exit(Done),
				fsm.New[St]("w", A).Register(A, cfgTask{C: tc.cfg}).Exit(Done),
				fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{noop{}, cfgTask{C: tc.cfg}}, split).Exit(Done),
			} {
				err := wf.Validate()
				if tc.msg == "" {
					require.NoError(t, err)
					continue
				}
				require.ErrorIs(t, err, fsm.ErrConfiguration)
				require.ErrorContains(t, err, strings.TrimPrefix(tc.msg, `task for state "a": `))
			}
			if tc.msg != "" {
				require.ErrorContains(t, fsm.New[St]("w", A).Register(A, noop{}, tc.cfg).Exit(Done).Validate(), tc.msg)
			}
		})
	}
}
