package coordinator

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// requestRig is a coordinator (with a fault hook in the request fast path
// and a count of each run's ends), a worker hosting the demo workflows and
// a client, on an embedded JetStream server.
type requestRig struct {
	t     *testing.T
	ctx   context.Context
	nc    *nats.Conn
	js    jetstream.JetStream
	cl    *client.Client
	c     *Coordinator
	names protocol.Names

	mu    sync.Mutex
	ended map[string][]*protocol.RunRecord // guarded by mu
}

// sleepyFor is how long the first task of the rig's demo.Sleepy runs.
const sleepyFor = 1500 * time.Millisecond

// newRequestRig starts the rig; each of before is applied to the
// coordinator before its Start (settings New would refuse, for tests).
func newRequestRig(t *testing.T, cfg Config, hook func(runID string) bool, before ...func(*Coordinator)) *requestRig {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	r := &requestRig{t: t, ctx: ctx, nc: nc, js: js, names: protocol.MustNames(""), ended: map[string][]*protocol.RunRecord{}}

	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{demo.OneTask(), demo.Workflow(), demo.Sleepy(sleepyFor)}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })

	cfg.OnEnded = func(rec *protocol.RunRecord) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.ended[rec.ID] = append(r.ended[rec.ID], rec)
	}
	c, err := New(nc, cfg)
	require.NoError(t, err)
	c.afterCommands = hook
	for _, f := range before {
		f(c)
	}
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		require.NoError(t, c.Stop(sctx))
	})
	r.c = c
	if r.cl, err = client.New(nc, client.Config{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// request sends body as a plain core NATS trigger request for workflow
// (JSON when json) and returns the reply's bytes.
func (r *requestRig) request(workflow string, body []byte, json bool) []byte {
	r.t.Helper()
	msg := &nats.Msg{Subject: r.names.RPCTriggerSubject(workflow), Data: body, Header: nats.Header{}}
	if json {
		msg.Header.Set(protocol.HeaderContentType, protocol.ContentTypeJSON)
	}
	reply, err := r.nc.RequestMsg(msg, 10*time.Second)
	require.NoError(r.t, err)
	return reply.Data
}

// endedOnce waits until run id ended, then checks it ended exactly once,
// completed, with path want.
func (r *requestRig) endedOnce(id string, want ...string) {
	r.t.Helper()
	out, err := r.cl.Await(r.ctx, id)
	require.NoError(r.t, err)
	require.Equal(r.t, client.RunCompleted, out.Status)
	natstest.WaitFor(r.t, 10*time.Second, "run "+id+" ended", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.ended[id]) > 0
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Len(r.t, r.ended[id], 1, "run %s ended more than once", id)
	require.Equal(r.t, want, r.ended[id][0].Path)
}

// storedTriggers is how many triggers the triggers stream ever stored (a
// work queue: handled ones are gone, the sequence stays).
func (r *requestRig) storedTriggers() uint64 {
	r.t.Helper()
	st, err := r.js.Stream(r.ctx, layout.TriggersStream(r.names))
	require.NoError(r.t, err)
	info, err := st.Info(r.ctx)
	require.NoError(r.t, err)
	return info.State.LastSeq
}

// waitDefined waits until the worker registered workflow.
func (r *requestRig) waitDefined(workflow string) {
	r.t.Helper()
	kv, err := r.js.KeyValue(r.ctx, layout.DefinitionsBucket(r.names))
	require.NoError(r.t, err)
	natstest.WaitFor(r.t, 30*time.Second, workflow+" registered", func() bool {
		_, err := kv.Get(r.ctx, layout.LatestDefinitionKey(workflow))
		return err == nil
	})
}

// TestTriggerRequestJSON: a person's `nats req` with a JSON body gets a JSON
// reply that says what happened — a new run, the same run again for a
// repeated idempotency key, an error for an unknown workflow — and nothing
// goes through the triggers stream.
func TestTriggerRequestJSON(t *testing.T) {
	r := newRequestRig(t, Config{}, nil)
	r.waitDefined(demo.OneTaskName)

	var first map[string]any
	require.NoError(t, json.Unmarshal(r.request(demo.OneTaskName, []byte(`{"input":{"n":1},"idempotency_key":"order-1"}`), true), &first))
	id, _ := first["run_id"].(string)
	require.NotEmpty(t, id, "reply %v", first)
	require.Nil(t, first["existing"], "a new run: %v", first)
	require.Nil(t, first["error"])
	r.endedOnce(id, "work", "done")

	var again map[string]any
	require.NoError(t, json.Unmarshal(r.request(demo.OneTaskName, []byte(`{"idempotency_key":"order-1"}`), true), &again))
	require.Equal(t, id, again["run_id"])
	require.Equal(t, true, again["existing"])

	var refused map[string]any
	require.NoError(t, json.Unmarshal(r.request("no_such_workflow", []byte(`{}`), true), &refused))
	e, _ := refused["error"].(map[string]any)
	require.NotNil(t, e, "reply %v", refused)
	require.Equal(t, string(protocol.CategoryConfiguration), e["category"])
	require.Contains(t, e["message"], "no_such_workflow")
	require.Nil(t, refused["retry"])

	// A run id the request names: new, then existing.
	var named map[string]any
	require.NoError(t, json.Unmarshal(r.request(demo.OneTaskName, []byte(`{"run_id":"named-1"}`), true), &named))
	require.Equal(t, "named-1", named["run_id"])
	require.Nil(t, named["existing"])
	r.endedOnce("named-1", "work", "done")
	require.NoError(t, json.Unmarshal(r.request(demo.OneTaskName, []byte(`{"run_id":"named-1"}`), true), &named))
	require.Equal(t, true, named["existing"])

	require.Zero(t, r.storedTriggers(), "requests for a first single-task state are not stored as triggers")

	// JSON without its Content-Type header is refused, in JSON, saying to add it.
	var bare map[string]any
	body := r.request(demo.OneTaskName, []byte(`{"input":{"n":1}}`), false)
	require.NoError(t, json.Unmarshal(body, &bare), "reply %q", body)
	e, _ = bare["error"].(map[string]any)
	require.NotNil(t, e, "reply %v", bare)
	require.Contains(t, e["message"], "Content-Type")

	// Neither JSON nor msgpack: refused in JSON (not msgpack, which a
	// person would read as noise), saying what to send.
	var junk map[string]any
	body = r.request(demo.OneTaskName, []byte(`garbage{`), false)
	require.NoError(t, json.Unmarshal(body, &junk), "reply %q", body)
	e, _ = junk["error"].(map[string]any)
	require.NotNil(t, e, "reply %v", junk)
	require.Contains(t, e["message"], `the body is neither JSON (no Content-Type: application/json header) nor a msgpack message: publish {"input": <your input>}`)

	// An empty body, with no header, starts a run with no input.
	var empty map[string]any
	body = r.request(demo.OneTaskName, nil, false)
	require.NoError(t, json.Unmarshal(body, &empty), "reply %q", body)
	id, _ = empty["run_id"].(string)
	require.NotEmpty(t, id, "reply %v", empty)
	r.endedOnce(id, "work", "done")
}

// TestTriggerRequestMsgpackViaClient: client.Trigger sends a msgpack
// request; a workflow whose first state is a split is forwarded to the
// triggers stream and answered from there.
func TestTriggerRequestMsgpackViaClient(t *testing.T) {
	r := newRequestRig(t, Config{}, nil)
	r.waitDefined(demo.OneTaskName)
	r.waitDefined(demo.WorkflowName)

	id, err := r.cl.Trigger(r.ctx, demo.OneTaskName, nil)
	require.NoError(t, err)
	r.endedOnce(id, "work", "done")
	require.Zero(t, r.storedTriggers())

	again, err := r.cl.Trigger(r.ctx, demo.OneTaskName, &client.TriggerOpts{RunID: id})
	require.NoError(t, err)
	require.Equal(t, id, again)

	split, err := r.cl.Trigger(r.ctx, demo.WorkflowName, nil)
	require.NoError(t, err)
	r.endedOnce(split, "start", "aggregate", "complete")
	require.EqualValues(t, 1, r.storedTriggers(), "a split start goes through the triggers stream")

	_, err = r.cl.Trigger(r.ctx, "no_such_workflow", nil)
	require.ErrorIs(t, err, fsm.ErrConfiguration)
}

// TestResultCreatesRecordFromStart: the coordinator stops handling a
// request after the first command is stored and before the record is
// written (the crash point of the fast path; no reply is sent). The
// worker's result echoes the start; the coordinator, finding no record,
// creates it from the start and applies the result: the run completes
// once, with its exact path, its record as the trigger would have written
// it (created at the command's time, with the input).
func TestResultCreatesRecordFromStart(t *testing.T) {
	skipped := make(chan string, 1)
	r := newRequestRig(t, Config{}, func(runID string) bool {
		if runID != "lost-1" {
			return true
		}
		skipped <- runID
		return false
	})
	r.waitDefined(demo.OneTaskName)
	commands, err := r.nc.SubscribeSync(r.names.TaskWildcard())
	require.NoError(t, err)

	data, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.OneTaskName, RunID: "lost-1",
		Input: []byte{0xa2, 'h', 'i'}})
	require.NoError(t, err)
	_, err = r.nc.RequestMsg(&nats.Msg{Subject: r.names.RPCTriggerSubject(demo.OneTaskName), Data: data, Header: nats.Header{}}, time.Second)
	require.ErrorIs(t, err, nats.ErrTimeout, "no reply: the coordinator 'died' before the record")
	require.Equal(t, "lost-1", natstest.Recv(t, skipped, time.Second))

	m, err := commands.NextMsg(10 * time.Second)
	require.NoError(t, err)
	var cmd protocol.TaskCommand
	require.NoError(t, wirecodec.Decode(m.Data, &cmd, 0))
	require.NotNil(t, cmd.Start, "the first command carries the start")

	r.endedOnce("lost-1", "work", "done")
	out, err := r.cl.Get(r.ctx, "lost-1")
	require.NoError(t, err)
	require.Equal(t, cmd.Start.CreatedAt, out.CreatedAt.UnixNano())
	var in string
	require.NoError(t, out.Input(&in))
	require.Equal(t, "hi", in)
	require.Zero(t, r.storedTriggers())
}

// TestSwallowedReplyStillCompletes: the sender is gone before the reply
// (its inbox has no subscriber): the run completes all the same.
func TestSwallowedReplyStillCompletes(t *testing.T) {
	r := newRequestRig(t, Config{}, nil)
	r.waitDefined(demo.OneTaskName)
	data, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.OneTaskName, RunID: "swallowed-1"})
	require.NoError(t, err)
	require.NoError(t, r.nc.PublishMsg(&nats.Msg{Subject: r.names.RPCTriggerSubject(demo.OneTaskName), Data: data,
		Reply: "_INBOX.nobody_listens", Header: nats.Header{}}))
	r.endedOnce("swallowed-1", "work", "done")
}

// TestTriggerRequestOverloaded: over Config.MaxRequests a request is
// answered at once with an error that says to retry (not queued); the
// request in hand completes.
func TestTriggerRequestOverloaded(t *testing.T) {
	held, release := make(chan string, 1), make(chan struct{})
	r := newRequestRig(t, Config{MaxRequests: 1}, func(runID string) bool {
		held <- runID
		<-release
		return true
	})
	r.waitDefined(demo.OneTaskName)
	first := make(chan []byte, 1)
	go func() {
		reply, err := r.nc.RequestMsg(&nats.Msg{Subject: r.names.RPCTriggerSubject(demo.OneTaskName),
			Data: []byte(`{"run_id":"held-1"}`), Header: nats.Header{protocol.HeaderContentType: {protocol.ContentTypeJSON}}}, 30*time.Second)
		if err == nil {
			first <- reply.Data
		}
		close(first)
	}()
	require.Equal(t, "held-1", natstest.Recv(t, held, 10*time.Second))

	var over map[string]any
	require.NoError(t, json.Unmarshal(r.request(demo.OneTaskName, []byte(`{"run_id":"over-1"}`), true), &over))
	require.Equal(t, true, over["retry"], "reply %v", over)
	e, _ := over["error"].(map[string]any)
	require.NotNil(t, e)
	require.Contains(t, e["message"], "overloaded")

	close(release)
	var got map[string]any
	require.NoError(t, json.Unmarshal(natstest.Recv(t, first, 10*time.Second), &got))
	require.Equal(t, "held-1", got["run_id"])
	r.endedOnce("held-1", "work", "done")
	_, err := r.cl.Get(r.ctx, "over-1")
	require.ErrorIs(t, err, client.ErrNotFound, "the refused request started nothing")
}

// TestClientSendsAgainAfterNoAnswer: the coordinator stops handling the
// first sending of a client.Trigger request after its command is stored
// (no record, no reply). The client, getting no answer, sends it again with
// the same run id; the second sending is answered with that run id, and
// the run completes once.
func TestClientSendsAgainAfterNoAnswer(t *testing.T) {
	var mu sync.Mutex
	dropped := 0
	r := newRequestRig(t, Config{}, func(string) bool {
		mu.Lock()
		defer mu.Unlock()
		dropped++
		return dropped > 1 // the first sending "dies" after its command
	})
	r.waitDefined(demo.OneTaskName)
	ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	id, err := r.cl.Trigger(ctx, demo.OneTaskName, nil)
	require.NoError(t, err)
	r.endedOnce(id, "work", "done")
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, dropped, 1)
}

// TestTriggerBeforeAnyCoordinator: with no coordinator running, a request
// has no responders; client.Trigger publishes the trigger to the triggers
// stream instead, and the first coordinator to start runs it and answers.
func TestTriggerBeforeAnyCoordinator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	names := protocol.MustNames("")
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{demo.OneTask()}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	type answer struct {
		id  string
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		id, err := cl.Trigger(ctx, demo.OneTaskName, nil)
		answered <- answer{id, err}
	}()
	natstest.WaitFor(t, 30*time.Second, "the trigger stored in the triggers stream", func() bool {
		st, err := js.Stream(ctx, layout.TriggersStream(names))
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		return err == nil && info.State.LastSeq > 0
	})
	c, err := New(nc, Config{})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		require.NoError(t, c.Stop(sctx))
	})
	a := natstest.Recv(t, answered, 30*time.Second)
	require.NoError(t, a.err)
	out, err := cl.Await(ctx, a.id)
	require.NoError(t, err)
	require.Equal(t, []string{"work", "done"}, out.Path)
}
