package coordinator

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// runWrites is how many messages the runs bucket ever stored.
func (r *requestRig) runWrites() uint64 {
	r.t.Helper()
	st, err := r.js.Stream(r.ctx, "KV_"+layout.RunsBucket(r.names))
	require.NoError(r.t, err)
	info, err := st.Info(r.ctx)
	require.NoError(r.t, err)
	return info.State.LastSeq
}

// TestDeferredStartOneWrite: with DeferStart, a one-task run started by a
// trigger request is written once — its record created together with its
// result — and the request is answered after that write, so the run it
// names is found at once; its started event is published.
func TestDeferredStartOneWrite(t *testing.T) {
	r := newRequestRig(t, Config{DeferStart: time.Second}, nil)
	r.waitDefined(demo.OneTaskName)
	started, err := r.nc.SubscribeSync(r.names.EventSubject(demo.OneTaskName, "*", protocol.EventStarted))
	require.NoError(t, err)

	before := r.runWrites()
	id, err := r.cl.Trigger(r.ctx, demo.OneTaskName, nil)
	require.NoError(t, err)
	rec, err := r.cl.Get(r.ctx, id)
	require.NoError(t, err, "the run an answer names is readable")
	require.Equal(t, client.RunCompleted, rec.Status, "answered once the first result was written")
	r.endedOnce(id, "work", "done")
	require.Equal(t, before+1, r.runWrites(), "one record write for the start and the result")

	m, err := started.NextMsg(10 * time.Second)
	require.NoError(t, err)
	var ev protocol.Event
	require.NoError(t, wirecodec.Decode(m.Data, &ev, 0))
	require.Equal(t, id, ev.RunID)
}

// TestDeferredStartSlowFirstStep: a first task slower than DeferStart: the
// start record is written when DeferStart has passed and the request
// answered then, with the run running; the run then completes once.
func TestDeferredStartSlowFirstStep(t *testing.T) {
	r := newRequestRig(t, Config{DeferStart: 100 * time.Millisecond}, nil)
	r.waitDefined(demo.SleepyName)

	sent := time.Now()
	id, err := r.cl.Trigger(r.ctx, demo.SleepyName, nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(sent), 100*time.Millisecond, "held for DeferStart")
	rec, err := r.cl.Get(r.ctx, id)
	require.NoError(t, err, "the run an answer names is readable")
	require.Equal(t, client.RunRunning, rec.Status, "answered with the start record, before the first task ended")
	require.Equal(t, "sleep", rec.State)
	r.endedOnce(id, "sleep", "after", "done")
}

// TestDeferredStartRequestSentAgain: the same request (same run id) sent
// again while its start is held is answered with the same run, which runs
// once.
func TestDeferredStartRequestSentAgain(t *testing.T) {
	r := newRequestRig(t, Config{DeferStart: time.Second}, nil)
	r.waitDefined(demo.SleepyName)

	const id = "sent-twice"
	data, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.SleepyName, RunID: id})
	require.NoError(t, err)
	var wg sync.WaitGroup
	replies := make([]protocol.TriggerReply, 2)
	errs := make([]error, 2)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := r.nc.RequestMsg(&nats.Msg{Subject: r.names.RPCTriggerSubject(demo.SleepyName), Data: data, Header: nats.Header{}}, 10*time.Second)
			if err == nil {
				err = wirecodec.Decode(m.Data, &replies[i], 0)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i := range replies {
		require.NoError(t, errs[i])
		require.Nil(t, replies[i].Error)
		require.Equal(t, id, replies[i].RunID)
		require.False(t, replies[i].Existing, "both answered as the new run")
	}
	r.endedOnce(id, "sleep", "after", "done")
}

// requestAsync sends a trigger request for run id of workflow with input;
// its reply (or error) comes on the returned channel.
func (r *requestRig) requestAsync(workflow, id string, input []byte) <-chan protocol.TriggerReply {
	r.t.Helper()
	data, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: workflow, RunID: id, Input: input})
	require.NoError(r.t, err)
	out := make(chan protocol.TriggerReply, 1)
	go func() {
		var reply protocol.TriggerReply
		m, err := r.nc.RequestMsg(&nats.Msg{Subject: r.names.RPCTriggerSubject(workflow), Data: data, Header: nats.Header{}}, 10*time.Second)
		if err == nil {
			err = wirecodec.Decode(m.Data, &reply, 0)
		}
		if err != nil {
			reply.Error = &protocol.ErrorInfo{Message: err.Error()}
		}
		out <- reply
	}()
	return out
}

// waitSleeping waits until the rig's worker runs a sleep task.
func (r *requestRig) waitSleeping() {
	r.t.Helper()
	cons, err := r.js.Consumer(r.ctx, layout.TasksStream(r.names), layout.TaskConsumer("default", demo.Sleep{}.Kind()))
	require.NoError(r.t, err)
	natstest.WaitFor(r.t, 10*time.Second, "the first task running", func() bool {
		info, err := cons.Info(r.ctx)
		return err == nil && info.NumAckPending == 1
	})
}

// TestDeferredStartOtherTriggerSameRunID: another trigger (another input)
// with the run id of a held start is answered "existing", and the held
// request as the new run.
func TestDeferredStartOtherTriggerSameRunID(t *testing.T) {
	r := newRequestRig(t, Config{DeferStart: time.Second}, nil, func(c *Coordinator) { c.cfg.DeferStart = time.Hour })
	r.waitDefined(demo.SleepyName)

	const id = "two-triggers"
	first := r.requestAsync(demo.SleepyName, id, nil)
	r.waitSleeping()
	other := natstest.Recv(t, r.requestAsync(demo.SleepyName, id, mustEncodeValue(t, "other input")), 10*time.Second)
	require.Nil(t, other.Error)
	require.True(t, other.Existing, "the run id is taken")
	held := natstest.Recv(t, first, 10*time.Second)
	require.Nil(t, held.Error)
	require.Equal(t, id, held.RunID)
	require.False(t, held.Existing)
	r.endedOnce(id, "sleep", "after", "done")
}

func mustEncodeValue(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wirecodec.EncodeValue(v)
	require.NoError(t, err)
	return b
}

// TestDeferredStartHeldAtStop: a coordinator stopped while it holds a start
// record writes it and answers the request. (DeferStart is an hour here:
// only the stop, or the first task's result 1.5 s later, can write it; the
// record's state tells which.)
func TestDeferredStartHeldAtStop(t *testing.T) {
	r := newRequestRig(t, Config{DeferStart: time.Second}, nil, func(c *Coordinator) { c.cfg.DeferStart = time.Hour })
	r.waitDefined(demo.SleepyName)

	answered := r.requestAsync(demo.SleepyName, "held-at-stop", nil)
	r.waitSleeping() // the first command is out and the start held
	require.NoError(t, r.c.Stop(r.ctx))
	reply := natstest.Recv(t, answered, 10*time.Second)
	require.Nil(t, reply.Error)
	require.Equal(t, "held-at-stop", reply.RunID)
	rec, err := r.cl.Get(r.ctx, "held-at-stop")
	require.NoError(t, err, "the held start record was written at the stop")
	require.Equal(t, client.RunRunning, rec.Status)
	require.Equal(t, "sleep", rec.State, "the start record, not the first result's")
}

// TestDeferredStartCancelWhileHeld: a cancel for a run whose start is held
// (a run id the sender chose; sent while its first task runs, usually well
// before its first task's result) reaches the coordinator holding it, which
// writes the start and the cancel together: the request is answered with
// the run, and the run ends cancelled, once.
func TestDeferredStartCancelWhileHeld(t *testing.T) {
	r := newRequestRig(t, Config{DeferStart: time.Second}, nil, func(c *Coordinator) { c.cfg.DeferStart = time.Hour })
	r.waitDefined(demo.SleepyName)

	const id = "cancelled-while-held"
	answered := r.requestAsync(demo.SleepyName, id, nil)
	r.waitSleeping()
	require.NoError(t, r.cl.Cancel(r.ctx, id, "not needed"))
	reply := natstest.Recv(t, answered, 10*time.Second)
	require.Nil(t, reply.Error)
	require.Equal(t, id, reply.RunID)
	out, err := r.cl.Await(r.ctx, id)
	require.ErrorIs(t, err, fsm.ErrCancelled)
	require.Equal(t, client.RunCancelled, out.Status)
	natstest.WaitFor(t, 10*time.Second, "run "+id+" ended", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.ended[id]) > 0
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Len(t, r.ended[id], 1)
}

// holdStart makes the rig's shard hold the start of run id (a chain), as
// a trigger request in deferred-start mode leaves it after its first
// command is stored.
func (r *shardRig) holdStart(id string) *heldStart {
	r.t.Helper()
	r.c.cfg.DeferStart = time.Second
	req := job{runID: id, rpc: true, msg: &inputMsg{subject: "trigger"}, trig: &protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.ChainName}}
	m, rec, fx, data, ok := r.s.start(r.ctx, req)
	require.True(r.t, ok)
	h := &heldStart{jobs: []job{req}, m: m, rec: rec, data: data, fx: fx}
	r.s.hold(h)
	return h
}

// TestHeldStartMeetsOtherRecords: inputs that cannot be applied to a held
// start record are applied as without deferred start, after the held
// record is written (or found written elsewhere).
func TestHeldStartMeetsOtherRecords(t *testing.T) {
	r := newShardRig(t)
	t.Run("a later step's result, the record created and moved elsewhere", func(t *testing.T) {
		const id = "held-later-step"
		h := r.holdStart(id)
		req := h.jobs[0].msg
		_, err := r.other.kv.create(r.ctx, layout.RunKey(id), h.data, "") // created from the echoed start
		require.NoError(t, err)
		r.move(r.other, id, 0, "s1")
		in := r.result(id, 1, "s2") // step 1's result reaches the holder
		r.s.apply(r.ctx, []job{in})
		require.Same(t, req, r.settled(r.s).msg, "the held request answered from the record found")
		require.Same(t, in.msg, r.settled(r.s).msg)
		rec, _ := r.record(id)
		require.Equal(t, "s2", rec.State, "the step-1 result applied")
		require.Nil(t, r.s.held[id])
	})
	t.Run("the first result, a marker of an earlier run with the id in the way", func(t *testing.T) {
		const id = "held-after-marker"
		r.start(r.other, id)
		require.NoError(t, r.c.runs.Delete(r.ctx, layout.RunKey(id)))
		h := r.holdStart(id)
		req := h.jobs[0].msg
		in := r.result(id, 0, "s1")
		r.s.apply(r.ctx, []job{in})
		require.Same(t, req, r.settled(r.s).msg, "the held request answered once its record is written")
		p := r.settled(r.s)
		require.Same(t, in.msg, p.msg)
		require.Empty(t, in.msg.(*inputMsg).how(), "the result is not handed back")
		rec, _ := r.record(id)
		require.Equal(t, "s1", rec.State)
		require.Nil(t, r.s.held[id])
	})
	t.Run("a stored trigger for the held run id", func(t *testing.T) {
		const id = "held-stored-trigger"
		h := r.holdStart(id)
		req, createdAt := h.jobs[0].msg, h.rec.CreatedAt
		stored := job{runID: id, msg: &inputMsg{subject: "trigger"}, trig: &protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.ChainName}}
		r.s.trigger(r.ctx, stored)
		require.Same(t, req, r.settled(r.s).msg, "the held start written first")
		require.Same(t, stored.msg, r.settled(r.s).msg, "the stored trigger finds the run: existing")
		rec, _ := r.record(id)
		require.Equal(t, createdAt, rec.CreatedAt, "the held request's run")
	})
}
