package protocol_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestNames(t *testing.T) {
	t.Parallel()

	type nameCase struct {
		got, want string
	}
	// names lists every name under prefix p.
	names := func(n protocol.Names) map[string]nameCase {
		return map[string]nameCase{
			"Prefix":               {n.Prefix(), "{p}"},
			"TriggersStream":       {layout.TriggersStream(n), "{P}_TRIGGERS"},
			"TasksStream":          {layout.TasksStream(n), "{P}_TASKS"},
			"ResultsStream":        {layout.ResultsStream(n), "{P}_RESULTS"},
			"ControlStream":        {layout.ControlStream(n), "{P}_CONTROL"},
			"TimersStream":         {layout.TimersStream(n), "{P}_TIMERS"},
			"EventsStream":         {layout.EventsStream(n), "{P}_EVENTS"},
			"DLQStream":            {layout.DLQStream(n), "{P}_DLQ"},
			"RunsBucket":           {layout.RunsBucket(n), "{b}_runs"},
			"BranchesBucket":       {layout.BranchesBucket(n), "{b}_branches"},
			"DefinitionsBucket":    {layout.DefinitionsBucket(n), "{b}_definitions"},
			"SchedulesBucket":      {layout.SchedulesBucket(n), "{b}_schedules"},
			"BreakersBucket":       {layout.BreakersBucket(n), "{b}_breakers"},
			"StoreBucket":          {layout.StoreBucket(n), "{b}_store"},
			"WorkersBucket":        {layout.WorkersBucket(n), "{b}_workers"},
			"LeaderBucket":         {layout.LeaderBucket(n), "{b}_leader"},
			"TriggerSubject":       {n.TriggerSubject("wf"), "{p}.trigger.wf"},
			"TriggerWildcard":      {n.TriggerWildcard(), "{p}.trigger.>"},
			"TaskSubject":          {n.TaskSubject("q", "fetch"), "{p}.task.q.fetch"},
			"TaskWildcard":         {n.TaskWildcard(), "{p}.task.>"},
			"TaskConsumer":         {layout.TaskConsumer("q", "fetch"), "task_q_fetch"},
			"ResultSubject":        {n.ResultSubject("r1"), "{p}.result.r1"},
			"ResultWildcard":       {n.ResultWildcard(), "{p}.result.>"},
			"RPCResultSubject":     {n.RPCResultSubject("c1"), "{p}.rpc.result.c1"},
			"RPCResultAnySubject":  {n.RPCResultAnySubject(), "{p}.rpc.results"},
			"CancelSubject":        {n.CancelSubject("r1"), "{p}.control.cancel.r1"},
			"ControlWildcard":      {n.ControlWildcard(), "{p}.control.>"},
			"TimerAtSubject":       {n.TimerAtSubject("r1", "join-3"), "{p}.timer.at.r1.join-3"},
			"TimerFireSubject":     {n.TimerFireSubject("r1", "join-3"), "{p}.timer.fire.r1.join-3"},
			"TimerWildcard":        {n.TimerWildcard(), "{p}.timer.>"},
			"TimerFireWildcard":    {n.TimerFireWildcard(), "{p}.timer.fire.>"},
			"EventSubject":         {n.EventSubject("wf", "r1", protocol.EventCompleted), "{p}.event.wf.r1.completed"},
			"EventWildcard":        {n.EventWildcard(), "{p}.event.>"},
			"RunEventsWildcard":    {n.RunEventsWildcard("r1"), "{p}.event.*.r1.>"},
			"DLQSubject":           {n.DLQSubject("result"), "{p}.dlq.result"},
			"DLQWildcard":          {n.DLQWildcard(), "{p}.dlq.>"},
			"NoticeCancelSubject":  {n.NoticeCancelSubject("r1"), "{p}.notice.cancel.r1"},
			"NoticeCancelWildcard": {n.NoticeCancelWildcard(), "{p}.notice.cancel.>"},
		}
	}
	tests := []struct {
		prefix        string
		p, upper, bkt string // expected prefix, stream prefix, bucket prefix
	}{
		{"", "cano", "CANO", "cano"},
		{"cano", "cano", "CANO", "cano"},
		{"staging", "staging", "STAGING", "staging"},
		{"team-a", "team-a", "TEAM_A", "team_a"},
		{"Blue_2", "Blue_2", "BLUE_2", "Blue_2"},
	}
	for _, tc := range tests {
		t.Run("prefix="+tc.prefix, func(t *testing.T) {
			t.Parallel()
			n, err := protocol.NewNames(tc.prefix)
			require.NoError(t, err)
			r := strings.NewReplacer("{p}", tc.p, "{P}", tc.upper, "{b}", tc.bkt)
			for fn, c := range names(n) {
				require.Equal(t, r.Replace(c.want), c.got, fn)
			}
			require.Equal(t, n, protocol.MustNames(tc.prefix))
		})
	}
}

// TestNamesDisjoint checks that two deployments with different prefixes
// share no subject space, stream or bucket.
func TestNamesDisjoint(t *testing.T) {
	t.Parallel()
	a, b := protocol.MustNames("alpha"), protocol.MustNames("beta")
	require.NotEqual(t, layout.TriggersStream(a), layout.TriggersStream(b))
	require.NotEqual(t, layout.RunsBucket(a), layout.RunsBucket(b))
	for _, w := range []string{a.TriggerWildcard(), a.TaskWildcard(), a.ResultWildcard(),
		a.ControlWildcard(), a.TimerWildcard(), a.EventWildcard(), a.DLQWildcard()} {
		require.True(t, strings.HasPrefix(w, "alpha."), w)
	}
	require.False(t, strings.HasPrefix(b.TriggerSubject("wf"), "alpha."))
}

func TestNewNamesInvalidPrefix(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"a.b", "a b", "*", ">", "a>", strings.Repeat("p", protocol.MaxNameLen+1), "ünï"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			_, err := protocol.NewNames(p)
			require.ErrorIs(t, err, protocol.ErrInvalidName)
			require.Panics(t, func() { protocol.MustNames(p) })
		})
	}
}

func TestWorkflowFromTriggerSubject(t *testing.T) {
	t.Parallel()
	n := protocol.MustNames("team-a")
	tests := []struct {
		subj, want string
	}{
		{"team-a.trigger.parallel_fetch", "parallel_fetch"},
		{n.TriggerSubject("wf"), "wf"},
		{"cano.trigger.wf", ""},
		{"team-a.result.r1", ""},
		{"team-a.trigger", ""},
		{"", ""},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, layout.WorkflowFromTriggerSubject(n, tc.subj), tc.subj)
	}
}

func TestValidToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"letters", "parallelFetch", true},
		{"digits", "0123", true},
		{"dash and underscore", "run-01_HZX", true},
		{"max length", strings.Repeat("a", protocol.MaxNameLen), true},
		{"one byte", "x", true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", protocol.MaxNameLen+1), false},
		{"dot", "a.b", false},
		{"star", "*", false},
		{"gt", ">", false},
		{"space", "a b", false},
		{"tab", "a\tb", false},
		{"slash", "a/b", false},
		{"colon", "a:b", false},
		{"non-ASCII", "café", false},
		{"NUL", "a\x00", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := protocol.ValidToken(tc.in)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, protocol.ErrInvalidName)
		})
	}
}

func TestMessageIDsAndKeys(t *testing.T) {
	t.Parallel()
	require.Equal(t, "r1/3/-1", layout.CommandMsgID("r1", 3, -1))
	require.Equal(t, "r1/4294967295/2147483647", layout.CommandMsgID("r1", 1<<32-1, 1<<31-1))
	require.Equal(t, "r:r1/3/2", layout.ResultMsgID("r1", 3, 2))
	require.Equal(t, "r1", layout.RunKey("r1"))
	require.Equal(t, "r1.3.2", layout.BranchKey("r1", 3, 2))
	require.Equal(t, "r1.3.spec", layout.SplitSpecKey("r1", 3))
	require.Equal(t, "r1.>", layout.RunBranchesWildcard("r1"))
	require.Equal(t, "def.wf.v3", layout.DefinitionKey("wf", "v3"))
	require.Equal(t, "latest.wf", layout.LatestDefinitionKey("wf"))
	require.Equal(t, "flow.nightly", layout.ScheduleKey("nightly"))
	require.Equal(t, "status.nightly", layout.FlowStatusKey("nightly"))
	require.Equal(t, "payments", layout.BreakerKey("payments"))
	require.Equal(t, "scheduler", layout.LeaderKey)
	// Branch keys of one run stay under the run's wildcard.
	require.True(t, strings.HasPrefix(layout.BranchKey("r1", 0, 0), "r1."))
}

func TestWorkerKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, want string
	}{
		{"token kept", "worker-7_a", "worker-7_a"},
		{"dots encoded", "ip-10-0-0-7.ec2.internal-4242", "b64.aXAtMTAtMC0wLTcuZWMyLmludGVybmFsLTQyNDI"},
		{"wildcards encoded", "a.*.>", "b64.YS4qLj4"},
		{"non-ASCII encoded", "café", "b64.Y2Fmw6k"},
		{"over a token's length encoded", strings.Repeat("a", protocol.MaxNameLen+1), "b64." + strings.Repeat("YWFh", 43)},
	}
	keyRe := regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`) // jetstream's rule for KV keys
	seen := map[string]string{}
	for _, tc := range tests {
		key := layout.WorkerKey(tc.id)
		require.Equal(t, tc.want, key, tc.name)
		require.Regexp(t, keyRe, key, tc.name)
		require.NotContains(t, key, "..", tc.name)
		require.False(t, strings.HasSuffix(key, "."), tc.name)
		require.NotContains(t, seen, key, "%s and %s share a key", tc.name, seen[key])
		seen[key] = tc.name
	}
	// An id that looks like an encoded key is itself encoded: no collision.
	require.NotEqual(t, layout.WorkerKey("b64.YQ"), layout.WorkerKey("a"))
	require.NotEqual(t, layout.WorkerKey("b64.YQ"), "b64.YQ")
}

func TestDerivedRunIDs(t *testing.T) {
	t.Parallel()
	id := layout.IdempotentRunID("wf", "order-1")
	require.NoError(t, protocol.ValidToken(id))
	require.Equal(t, id, layout.IdempotentRunID("wf", "order-1"), "deterministic")
	require.NotEqual(t, id, layout.IdempotentRunID("wf", "order-2"))
	require.NotEqual(t, id, layout.IdempotentRunID("wf2", "order-1"))
	require.NotEqual(t, layout.IdempotentRunID("ab", "c"), layout.IdempotentRunID("a", "bc"), "workflow and key are separated")
	// Keys may hold any bytes; the run id is still a token.
	require.NoError(t, protocol.ValidToken(layout.IdempotentRunID("wf", "a.b *>\x00é")))

	ts := time.Unix(1767225600, 123)
	sid := layout.StreamRunID(42, ts)
	require.NoError(t, protocol.ValidToken(sid))
	require.Equal(t, sid, layout.StreamRunID(42, ts), "stable across redeliveries")
	require.NotEqual(t, sid, layout.StreamRunID(43, ts))
}

func TestTimerName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "deadline", layout.TimerName(protocol.TimerRunDeadline, 7))
	require.Equal(t, "join-7", layout.TimerName(protocol.TimerJoin, 7))
	for _, k := range []protocol.TimerKind{protocol.TimerRunDeadline, protocol.TimerJoin} {
		require.NoError(t, protocol.ValidToken(layout.TimerName(k, 1<<32-1)))
	}
}
