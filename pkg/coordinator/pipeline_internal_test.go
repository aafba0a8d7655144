package coordinator

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/protocol"
)

// pump takes sh's store answers, as its loop does, until no store of sh
// is in flight.
func (r *shardRig) pump(sh *shard) {
	r.t.Helper()
	for len(sh.st.pending) > 0 {
		sh.takeAnswers(natstest.Recv(r.t, sh.st.answers, 10*time.Second))
		sh.st.answered()
	}
}

func TestShardPipelinesARunsStores(t *testing.T) {
	r := newShardRig(t)
	sh := r.other
	id := "piperun1"
	r.start(sh, id)
	sh.mustWait = false // as in its loop: record updates are sent, not waited for

	sh.handleBatch(r.ctx, []job{r.result(id, 0, "s1")})
	require.Contains(t, sh.busy, id, "the update is in flight")
	require.Len(t, sh.st.pending, 1)
	r.noneSettled(sh)
	second := r.result(id, 1, "s2")
	sh.handleBatch(r.ctx, []job{second})
	require.Len(t, sh.busy[id], 1, "an input of a run with a store in flight waits for it")
	require.Len(t, sh.st.pending, 1, "one store in flight per run")

	r.pump(sh)
	first := r.settled(sh)
	require.Empty(t, first.term)
	require.Same(t, second.msg, r.settled(sh).msg, "the waiting input was applied after the first")
	require.NotContains(t, sh.busy, id)
	rec, rev := r.record(id)
	require.Equal(t, "s2", rec.State)
	require.Equal(t, uint32(2), rec.Step)
	require.Equal(t, rev, sh.cache[id].rev, "the written revision is cached")
}

func TestShardRedoesAFailedSentStoreWaiting(t *testing.T) {
	r := newShardRig(t)
	sh := r.other
	id := "piperun2"
	r.start(sh, id)
	r.move(sh, id, 0, "s1") // waiting: the cache has step 1
	sh.mustWait = false
	// Another coordinator moves the run on: the sent update conflicts.
	r.move(r.s, id, 1, "s2")
	in := r.result(id, 1, "s2") // the same result, redelivered here
	sh.handleBatch(r.ctx, []job{in})
	require.Contains(t, sh.busy, id)
	r.pump(sh)
	p := r.settled(sh)
	require.Same(t, in.msg, p.msg)
	require.Empty(t, p.term, "applied again from a fresh read: a duplicate, acknowledged")
	require.False(t, sh.mustWait, "the store is waited for only while redone")
	rec, rev := r.record(id)
	require.Equal(t, "s2", rec.State)
	require.Equal(t, rev, sh.cache[id].rev)
}

func TestStorerGivesUpOnAnOverdueAnswer(t *testing.T) {
	r := newShardRig(t)
	st := newStorer(r.c.nc)
	t.Cleanup(st.close)
	// A subscriber that never answers stands in for a lost acknowledgement.
	sub, err := r.c.nc.SubscribeSync("pipeline.swallowed")
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	var got []error
	require.NoError(t, st.send(&nats.Msg{Subject: "pipeline.swallowed"}, func(_ uint64, err error) { got = append(got, err) }))
	req, err := sub.NextMsg(10 * time.Second)
	require.NoError(t, err)

	st.overdue(time.Now()) // not overdue yet
	st.answered()
	require.Empty(t, got)
	st.overdue(time.Now().Add(2 * kvTimeout))
	st.answered()
	require.Len(t, got, 1)
	require.ErrorIs(t, got[0], errStoreOverdue)
	require.Empty(t, st.pending)
	require.Empty(t, st.order)

	// Its answer, late, is dropped.
	require.NoError(t, r.c.nc.Publish(req.Reply, []byte(`{"stream":"x","seq":7}`)))
	st.route(natstest.Recv(t, st.answers, 10*time.Second))
	st.answered()
	require.Len(t, got, 1)
}

func TestShardSendsAHeldStartWithItsFirstInput(t *testing.T) {
	r := newShardRig(t)
	sh := r.other
	id := "piperun3"
	r.c.cfg.DeferStart = time.Second
	req := job{runID: id, rpc: true, msg: &inputMsg{subject: "trigger"}, trig: &protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.ChainName}}
	m, rec, fx, data, ok := sh.start(r.ctx, req)
	require.True(t, ok)
	h := &heldStart{jobs: []job{req}, m: m, rec: rec, data: data, fx: fx}
	sh.hold(h)
	sh.mustWait = false

	in := r.result(id, 0, "s1")
	sh.handleBatch(r.ctx, []job{in})
	require.Contains(t, sh.busy, id, "the record's create, with the result applied, is in flight")
	h.due = time.Now().Add(-time.Second) // due meanwhile
	sh.writeDue(r.ctx)
	require.Len(t, sh.st.pending, 1, "a held start whose write is in flight is not written again")
	r.noneSettled(sh)

	r.pump(sh)
	require.Same(t, req.msg, r.settled(sh).msg, "the request answered once the record is written")
	require.Same(t, in.msg, r.settled(sh).msg)
	require.Nil(t, sh.held[id])
	got, _ := r.record(id)
	require.Equal(t, "s1", got.State, "one write: the start and the first result")
	sh.writeDue(r.ctx)
	require.Empty(t, sh.st.pending)
	r.noneSettled(sh)
}

func TestShardWatchesEveryStoreInFlight(t *testing.T) {
	r := newShardRig(t)
	sh := r.other
	sub, err := r.c.nc.SubscribeSync("pipeline.unanswered")
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	// A store sent by a continuation marks no run busy; the loop's step
	// after the continuations arms the overdue timer for it all the same.
	require.False(t, sh.sentArmed)
	require.NoError(t, sh.st.send(&nats.Msg{Subject: "pipeline.unanswered"}, func(uint64, error) {}))
	sh.settleAnswered()
	require.True(t, sh.sentArmed, "an answer that never comes is found overdue")
	sh.sentTimer.Stop()
}
