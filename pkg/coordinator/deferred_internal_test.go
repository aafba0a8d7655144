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

	id, err := r.cl.Trigger(r.ctx, demo.SleepyName, nil)
	require.NoError(t, err)
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
	}
	r.endedOnce(id, "sleep", "after", "done")
}

// TestDeferredStartHeldAtStop: a coordinator stopped while it holds a start
// record writes it and answers the request.
func TestDeferredStartHeldAtStop(t *testing.T) {
	r := newRequestRig(t, Config{DeferStart: time.Second}, nil)
	r.waitDefined(demo.SleepyName)

	answered := make(chan error, 1)
	var reply protocol.TriggerReply
	data, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.SleepyName, RunID: "held-at-stop"})
	require.NoError(t, err)
	go func() {
		m, err := r.nc.RequestMsg(&nats.Msg{Subject: r.names.RPCTriggerSubject(demo.SleepyName), Data: data, Header: nats.Header{}}, 10*time.Second)
		if err == nil {
			err = wirecodec.Decode(m.Data, &reply, 0)
		}
		answered <- err
	}()
	// The first command is out (a worker runs it) and the request is held.
	cons, err := r.js.Consumer(r.ctx, layout.TasksStream(r.names), layout.TaskConsumer("default", demo.Sleep{}.Kind()))
	require.NoError(t, err)
	natstest.WaitFor(t, 10*time.Second, "the first task running", func() bool {
		info, err := cons.Info(r.ctx)
		return err == nil && info.NumAckPending == 1
	})
	require.NoError(t, r.c.Stop(r.ctx))
	require.NoError(t, natstest.Recv(t, answered, 10*time.Second))
	require.Nil(t, reply.Error)
	require.Equal(t, "held-at-stop", reply.RunID)
	rec, err := r.cl.Get(r.ctx, "held-at-stop")
	require.NoError(t, err, "the held start record was written at the stop")
	require.Equal(t, client.RunRunning, rec.Status)
}

// TestDeferredStartCancelWhileHeld: a cancel for a run whose start is held
// (a run id the sender chose; sent while its first task runs, usually well
// within DeferStart) reaches the coordinator holding it, which writes the
// start and the cancel together (or, past DeferStart, applies it to the
// written start): the request is answered with the run, and the run ends
// cancelled, once.
func TestDeferredStartCancelWhileHeld(t *testing.T) {
	r := newRequestRig(t, Config{DeferStart: time.Second}, nil)
	r.waitDefined(demo.SleepyName)

	const id = "cancelled-while-held"
	answered := make(chan error, 1)
	var reply protocol.TriggerReply
	data, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.SleepyName, RunID: id})
	require.NoError(t, err)
	go func() {
		m, err := r.nc.RequestMsg(&nats.Msg{Subject: r.names.RPCTriggerSubject(demo.SleepyName), Data: data, Header: nats.Header{}}, 10*time.Second)
		if err == nil {
			err = wirecodec.Decode(m.Data, &reply, 0)
		}
		answered <- err
	}()
	cons, err := r.js.Consumer(r.ctx, layout.TasksStream(r.names), layout.TaskConsumer("default", demo.Sleep{}.Kind()))
	require.NoError(t, err)
	natstest.WaitFor(t, 10*time.Second, "the first task running", func() bool {
		info, err := cons.Info(r.ctx)
		return err == nil && info.NumAckPending == 1
	})
	require.NoError(t, r.cl.Cancel(r.ctx, id, "not needed"))
	require.NoError(t, natstest.Recv(t, answered, 10*time.Second))
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
