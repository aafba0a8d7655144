package worker_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

type remindStep string

const (
	remindSend remindStep = "send"
	remindDone remindStep = "done"
)

// sentAt records when each run's reminder task ran.
var sentAt sync.Map // run id → time.Time

type sendReminder struct{}

func (sendReminder) Kind() string { return "scheduled_send" }
func (sendReminder) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	sentAt.Store(tc.RunID, time.Now())
	return fsm.Next(remindDone), nil
}

// TestScheduledRunEndToEnd: a run triggered to start later is created at
// once (status scheduled, its start time, no task run), starts at its
// time, and completes; one cancelled before its start never runs its task;
// a JSON trigger request with start_in schedules one too.
func TestScheduledRunEndToEnd(t *testing.T) {
	t.Parallel()
	reg := &fsm.Registry{}
	fsm.Register[sendReminder](reg)
	wf := fsm.New[remindStep]("remind", remindSend).Register(remindSend, sendReminder{}).Exit(remindDone)
	env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{wf}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	at := time.Now().Add(700 * time.Millisecond)
	id, err := env.Client.Trigger(ctx, "remind", &client.TriggerOpts{StartAt: at})
	require.NoError(t, err)
	run, err := env.Client.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, run.Status)
	ranAt, ran := sentAt.Load(id)
	require.True(t, ran)
	require.False(t, ranAt.(time.Time).Before(at), "the task ran at %s, before its start %s", ranAt, at)
	got, err := env.Client.Get(ctx, id)
	require.NoError(t, err)
	require.True(t, got.StartAt.Equal(at))
	require.Len(t, got.History, 2)
	require.False(t, got.History[0].Entered.Before(at), "the first state was entered before the start")

	// An hour ahead: scheduled, listed as such; cancelled before its
	// start, it ends cancelled and its task never runs.
	hour := time.Now().Add(time.Hour)
	later, err := env.Client.Trigger(ctx, "remind", &client.TriggerOpts{StartAt: hour})
	require.NoError(t, err)
	run, err = env.Client.Get(ctx, later)
	require.NoError(t, err)
	require.Equal(t, client.RunScheduled, run.Status)
	require.True(t, run.StartAt.Equal(hour), "StartAt %s, want %s", run.StartAt, hour)
	require.True(t, run.Deadline.IsZero())
	require.Empty(t, run.History)
	scheduled, err := env.Client.List(ctx, &client.ListOpts{Workflow: "remind", Status: client.RunScheduled})
	require.NoError(t, err)
	require.Len(t, scheduled, 1)
	require.Equal(t, later, scheduled[0].ID)
	// Its start timer is a schedule message on the timers stream.
	waiting, err := timerWaiting(ctx, env, later, protocol.TimerStart) // moot_test.go
	require.NoError(t, err)
	require.True(t, waiting, "the start timer is scheduled")
	require.NoError(t, env.Client.Cancel(ctx, later, "not needed"))
	run, err = env.Client.Await(ctx, later)
	require.ErrorIs(t, err, fsm.ErrCancelled)
	require.Equal(t, client.RunCancelled, run.Status)
	_, ran = sentAt.Load(later)
	require.False(t, ran)
	// The cancel removes the start timer rather than leave it an hour.
	awaitTimer(ctx, t, env, later, protocol.TimerStart, false, "the cancelled run's start timer is removed")

	// A JSON trigger request (nats req) with start_in.
	reply, err := env.NC.RequestMsgWithContext(ctx, &nats.Msg{Subject: "cano.rpc.trigger.remind",
		Data: []byte(`{"start_in": "300ms"}`), Header: nats.Header{"Content-Type": {"application/json"}}})
	require.NoError(t, err)
	var answer struct {
		RunID string `json:"run_id"`
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(reply.Data, &answer), string(reply.Data))
	require.Empty(t, answer.Error)
	run, err = env.Client.Await(ctx, answer.RunID)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, run.Status)
	got, err = env.Client.Get(ctx, answer.RunID)
	require.NoError(t, err)
	require.False(t, got.StartAt.IsZero())
	require.False(t, got.History[0].Entered.Before(got.StartAt))
}

// TestStartNow: a run scheduled an hour ahead is started now by
// client.StartNow — its task runs, its StartAt becomes when it started,
// its schedule is removed — and a run that is not scheduled, or unknown,
// is refused.
func TestStartNow(t *testing.T) {
	t.Parallel()
	reg := &fsm.Registry{}
	fsm.Register[sendReminder](reg)
	wf := fsm.New[remindStep]("remind_now", remindSend).Register(remindSend, sendReminder{}).Exit(remindDone)
	env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{wf}})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	hour := time.Now().Add(time.Hour)
	id, err := env.Client.Trigger(ctx, "remind_now", &client.TriggerOpts{StartAt: hour})
	require.NoError(t, err)
	awaitTimer(ctx, t, env, id, protocol.TimerStart, true, "the start timer is scheduled")

	before := time.Now()
	require.NoError(t, env.Client.StartNow(ctx, id))
	run, err := env.Client.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, run.Status)
	ranAt, ran := sentAt.Load(id)
	require.True(t, ran)
	require.True(t, ranAt.(time.Time).Before(hour), "the task ran now, not in an hour")
	got, err := env.Client.Get(ctx, id)
	require.NoError(t, err)
	require.False(t, got.StartAt.Before(before.Add(-time.Second)), "StartAt %s is when it started", got.StartAt)
	require.True(t, got.StartAt.Before(hour))
	awaitTimer(ctx, t, env, id, protocol.TimerStart, false, "the schedule still waiting is removed")

	err = env.Client.StartNow(ctx, id)
	require.ErrorIs(t, err, client.ErrNotScheduled)
	require.Contains(t, err.Error(), "is completed: only a run waiting for its start can be started now")
	require.ErrorIs(t, env.Client.StartNow(ctx, "rNoSuchRun0000000000000"), client.ErrNotFound)

	// Without the client: a publish on the run's start-now subject (its
	// body ignored), as `nats pub` sends.
	other, err := env.Client.Trigger(ctx, "remind_now", &client.TriggerOpts{StartAt: hour})
	require.NoError(t, err)
	awaitTimer(ctx, t, env, other, protocol.TimerStart, true, "the start timer is scheduled")
	names := protocol.MustNames("")
	_, err = env.JS.Publish(ctx, names.StartNowSubject(other), []byte("now"))
	require.NoError(t, err)
	run, err = env.Client.Await(ctx, other)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, run.Status)
	awaitTimer(ctx, t, env, other, protocol.TimerStart, false, "its schedule is removed")
	// One for no run is dead-lettered, saying so.
	_, err = env.JS.Publish(ctx, names.StartNowSubject("rNoSuchRun0000000000000"), nil)
	require.NoError(t, err)
	var reason string
	require.Eventually(t, func() bool {
		dls, err := env.Client.DeadLetters(ctx, &client.DeadLetterFilter{Source: "control"})
		for _, d := range dls {
			reason = d.Reason
		}
		return err == nil && len(dls) == 1
	}, 20*time.Second, 20*time.Millisecond, "the start-now for no run is dead-lettered")
	require.Contains(t, reason, `start-now for unknown run "rNoSuchRun0000000000000"`)
}
