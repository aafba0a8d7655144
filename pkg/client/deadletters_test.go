package client_test

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/worker"
)

// startStepWorker starts a worker that hosts the step kind and registers
// wfs; it is stopped in t.Cleanup.
func startStepWorker(t *testing.T, nc *nats.Conn, id string, wfs ...worker.Definer) {
	t.Helper()
	reg := &fsm.Registry{}
	fsm.Register[step](reg)
	w, err := worker.New(nc, worker.Config{ID: id, Registry: reg, Workflows: wfs, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, w.Start(awaitCtx(t)))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
}

// waitDeadLetters polls DeadLetters(f) until ok accepts the list.
func waitDeadLetters(t *testing.T, cl *client.Client, f *client.DeadLetterFilter, msg string, ok func([]client.DeadLetter) bool) []client.DeadLetter {
	t.Helper()
	var list []client.DeadLetter
	natstest.WaitFor(t, 10*time.Second, msg, func() bool {
		var err error
		list, err = cl.DeadLetters(context.Background(), f)
		require.NoError(t, err)
		return ok(list)
	})
	return list
}

func seqs(list []client.DeadLetter) []uint64 {
	out := make([]uint64, len(list))
	for i, e := range list {
		out[i] = e.Seq
	}
	return out
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	names := protocol.MustNames("")
	garbage := []byte("\xc1\xff garbage \x00\x01")

	t.Run("a garbage trigger is listed, replayed (and refused again), deleted", func(t *testing.T) {
		t.Parallel()
		b := setupB(t)
		ctx := awaitCtx(t)
		before := time.Now()
		msg := &nats.Msg{Subject: names.TriggerSubject("chain"), Data: garbage, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "trig:garbage")
		msg.Header.Set(protocol.HeaderReplyTo, "_INBOX.gone")
		msg.Header.Set("X-Trace", "kept")
		_, err := b.js.PublishMsg(ctx, msg)
		require.NoError(t, err)

		list := waitDeadLetters(t, b.client, nil, "the garbage trigger dead-lettered",
			func(l []client.DeadLetter) bool { return len(l) == 1 })
		e := list[0]
		require.Equal(t, "trigger", e.Source)
		require.Equal(t, names.TriggerSubject("chain"), e.Subject)
		require.Equal(t, "malformed", e.Category)
		require.Contains(t, e.Reason, "malformed")
		require.Equal(t, garbage, e.Data)
		require.Equal(t, "kept", e.Headers["X-Trace"])
		require.Equal(t, "trig:garbage", e.Headers[jetstream.MsgIDHeader])
		require.False(t, e.Time.Before(before.Add(-time.Second)), "time %s", e.Time)

		// Garbage stays garbage: the replay is refused again, under a new
		// sequence, and the old entry is gone. The replay was not dropped
		// as a duplicate of the original's message id.
		require.NoError(t, b.client.Replay(ctx, e.Seq))
		list = waitDeadLetters(t, b.client, nil, "the replay dead-lettered again",
			func(l []client.DeadLetter) bool { return len(l) == 1 && l[0].Seq != e.Seq })
		again := list[0]
		require.Equal(t, garbage, again.Data)
		require.Equal(t, "kept", again.Headers["X-Trace"], "application headers are kept")
		require.Equal(t, "dlq-replay:"+strconv.FormatUint(e.Seq, 10), again.Headers[jetstream.MsgIDHeader])
		require.NotContains(t, again.Headers, protocol.HeaderReplyTo, "the original caller's inbox is dropped")

		require.ErrorIs(t, b.client.Replay(ctx, e.Seq), client.ErrDeadLetterNotFound)
		require.ErrorIs(t, b.client.DeleteDeadLetter(ctx, e.Seq), client.ErrDeadLetterNotFound)
		require.NoError(t, b.client.DeleteDeadLetter(ctx, again.Seq))
		list, err = b.client.DeadLetters(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, list)
		require.ErrorIs(t, b.client.DeleteDeadLetter(ctx, again.Seq), client.ErrDeadLetterNotFound)
	})

	t.Run("a trigger refused for an unknown workflow runs once it is registered", func(t *testing.T) {
		t.Parallel()
		b := setupB(t)
		ctx := awaitCtx(t)
		_, err := b.client.Trigger(ctx, "late", &client.TriggerOpts{RunID: "rlate"})
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		list := waitDeadLetters(t, b.client, &client.DeadLetterFilter{Source: "trigger"}, "the refused trigger",
			func(l []client.DeadLetter) bool { return len(l) == 1 })
		e := list[0]
		require.Equal(t, "rejected", e.Category)
		require.Contains(t, e.Reason, `"late"`)
		require.Equal(t, names.TriggerSubject("late"), e.Subject)

		// The fixed deployment: a worker that knows the workflow.
		startStepWorker(t, b.nc, "w-late", fsm.New[S]("late", SA).Register(SA, step{SB}).Register(SB, step{SDone}).Exit(SDone))
		require.NoError(t, b.client.Replay(ctx, e.Seq))
		out, err := b.client.Await(ctx, "rlate")
		require.NoError(t, err, "the replayed trigger keeps its run id")
		require.Equal(t, []string{"a", "b", "done"}, out.Path)
		list, err = b.client.DeadLetters(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, list, "a replayed entry is deleted")
	})

	t.Run("newest first, by source, with a limit; an undecodable entry is listed", func(t *testing.T) {
		t.Parallel()
		b := setupB(t)
		ctx := awaitCtx(t)
		for i := range 3 {
			_, err := b.js.Publish(ctx, names.TriggerSubject("wf"+strconv.Itoa(i)), garbage)
			require.NoError(t, err)
		}
		_, err := b.js.Publish(ctx, names.ResultSubject("rgarbage"), garbage)
		require.NoError(t, err)
		all := waitDeadLetters(t, b.client, nil, "four dead letters",
			func(l []client.DeadLetter) bool { return len(l) == 4 })
		require.True(t, slices.IsSortedFunc(all, func(x, y client.DeadLetter) int { return int(y.Seq) - int(x.Seq) }),
			"newest first: %v", seqs(all))

		triggers, err := b.client.DeadLetters(ctx, &client.DeadLetterFilter{Source: "trigger"})
		require.NoError(t, err)
		require.Len(t, triggers, 3)
		for _, e := range triggers {
			require.Equal(t, "trigger", e.Source)
		}
		newest, err := b.client.DeadLetters(ctx, &client.DeadLetterFilter{Source: "trigger", Limit: 2})
		require.NoError(t, err)
		require.Equal(t, seqs(triggers[:2]), seqs(newest))
		one, err := b.client.DeadLetters(ctx, &client.DeadLetterFilter{Limit: 1})
		require.NoError(t, err)
		require.Equal(t, seqs(all[:1]), seqs(one))
		none, err := b.client.DeadLetters(ctx, &client.DeadLetterFilter{Source: "timer"})
		require.NoError(t, err)
		require.Empty(t, none)

		// Something else published on a dead-letter subject.
		_, err = b.js.Publish(ctx, names.DLQSubject("task"), []byte("not a dead letter"))
		require.NoError(t, err)
		odd, err := b.client.DeadLetters(ctx, &client.DeadLetterFilter{Source: "task"})
		require.NoError(t, err)
		require.Len(t, odd, 1)
		require.Equal(t, "malformed", odd[0].Category)
		require.Equal(t, "task", odd[0].Source)
		require.Empty(t, odd[0].Subject)
		require.Equal(t, []byte("not a dead letter"), odd[0].Data)
		err = b.client.Replay(ctx, odd[0].Seq)
		require.Error(t, err)
		require.True(t, strings.Contains(err.Error(), "no original subject"), err.Error())
		require.NoError(t, b.client.DeleteDeadLetter(ctx, odd[0].Seq))

		_, err = b.client.DeadLetters(ctx, &client.DeadLetterFilter{Source: "a.b"})
		require.ErrorIs(t, err, protocol.ErrInvalidName)
		_, err = b.client.DeadLetters(ctx, &client.DeadLetterFilter{Limit: -1})
		require.Error(t, err)
	})
}
