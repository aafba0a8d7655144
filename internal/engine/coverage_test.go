package engine_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/engine"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestRetryMaths(t *testing.T) {
	t.Parallel()
	p := fsm.RetryExponentialCustom(3, 10*time.Millisecond, 2, 0, 0.5).Policy()
	for _, tc := range []struct {
		name string
		p    protocol.RetryPolicy
		k    uint32
		u    float64
		want time.Duration
	}{
		{"none", fsm.RetryNone().Policy(), 3, 0, 0},
		{"u clamped above", p, 0, 5, 15 * time.Millisecond},
		{"u clamped below", p, 0, -5, 5 * time.Millisecond},
		{"no max delay", p, 3, 0, 80 * time.Millisecond},
		{"NaN multiplier is 1", protocol.RetryPolicy{Mode: protocol.RetryExponential, BaseDelay: int64(time.Second), Multiplier: math.NaN()}, 5, 0, time.Second},
		{"overflow saturates", protocol.RetryPolicy{Mode: protocol.RetryExponential, BaseDelay: int64(time.Hour), Multiplier: 1e6}, 50, 0, time.Duration(math.MaxInt64)},
		{"at least a millisecond", protocol.RetryPolicy{Mode: protocol.RetryExponential, BaseDelay: 1, Multiplier: 1}, 0, 0, time.Millisecond},
	} {
		require.Equal(t, tc.want, engine.RetryDelay(tc.p, tc.k, tc.u), tc.name)
	}
	require.Equal(t, uint32(math.MaxUint32), engine.MaxAttempts(protocol.RetryPolicy{Mode: protocol.RetryFixed, MaxRetries: math.MaxUint32}))
}

func TestCompileRejects(t *testing.T) {
	t.Parallel()
	good := func() *protocol.Definition {
		d, err := fsm.New[St]("w", A).Register(A, noop{}).
			RegisterSplit(B, []fsm.Task{noop{}}, fsm.JoinConfig[St]{Strategy: join.All(), JoinState: Done}).Exit(Done).Definition()
		require.NoError(t, err)
		return d
	}
	for _, tc := range []struct {
		name   string
		mutate func(d *protocol.Definition)
		msg    string
	}{
		{"bad version", func(d *protocol.Definition) { d.Version = "a.b" }, "version"},
		{"bad queue", func(d *protocol.Definition) { d.Queue = "" }, "queue"},
		{"empty exit", func(d *protocol.Definition) { d.Exits = []string{""} }, "empty exit"},
		{"empty state name", func(d *protocol.Definition) { d.States[0].Name = "" }, "name empty"},
		{"no initial", func(d *protocol.Definition) { d.Initial = "" }, "no initial state"},
		{"negative timeout", func(d *protocol.Definition) { d.TotalTimeout = -1 }, "negative"},
		{"single without task", func(d *protocol.Definition) { d.States[0].Task = nil }, "no task"},
		{"bad task kind", func(d *protocol.Definition) { d.States[0].Task.Kind = "a b" }, "task kind"},
		{"split without split", func(d *protocol.Definition) { d.States[1].Split = nil }, "no split"},
		{"compact split", func(d *protocol.Definition) { d.States[1].Split.Params = [][]byte{{1}} }, "compact"},
		{"bad branch kind", func(d *protocol.Definition) { d.States[1].Split.Tasks[0].Kind = "a b" }, "branch 0"},
		{"unknown kind", func(d *protocol.Definition) { d.States[0].Kind = "odd" }, "unknown kind"},
		// Past the workflow rules, the wire rules coordinators apply.
		{"negative attempt timeout", func(d *protocol.Definition) { d.States[0].Task.AttemptTimeout = -1 }, "definition.states.a.attempt_timeout: negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := good()
			tc.mutate(d)
			_, err := engine.Compile(d)
			require.ErrorIs(t, err, fsm.ErrConfiguration)
			require.ErrorContains(t, err, tc.msg)
		})
	}
	_, err := engine.Compile(nil)
	require.ErrorIs(t, err, fsm.ErrConfiguration)
	_, err = fsm.New[St]("w", A).Register(A, nil).Exit(Done).Definition()
	require.ErrorIs(t, err, fsm.ErrConfiguration)
	_, err = fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{nil}, fsm.JoinConfig[St]{JoinState: Done}).Exit(Done).Definition()
	require.ErrorIs(t, err, fsm.ErrConfiguration)
}
