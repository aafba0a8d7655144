package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

type S string

const (
	SA, SB, SC, SDone, SRejected, SGhost, SSplit S = "a", "b", "c", "done", "rejected", "ghost", "split"
)

// step moves to Next (or, for the negotiation, counts rounds in the store).
type step struct {
	Next S `msgpack:"next"`
}

func (step) Kind() string { return "step" }
func (s step) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith(s.Next, tc.State), nil
}

// offer is cano's negotiation: seller and buyer alternate through the store
// until the price meets the budget.
type offer struct {
	Role string `msgpack:"role"`
}

func (offer) Kind() string { return "offer" }
func (o offer) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	price, err := kvstore.GetAs[int](ctx, tc.Store, "price")
	if errors.Is(err, kvstore.ErrNotFound) {
		price, err = 100, nil
	}
	if err != nil {
		return fsm.Result{}, err
	}
	if o.Role == "seller" {
		if err := kvstore.PutValue(ctx, tc.Store, "price", price-15); err != nil {
			return fsm.Result{}, err
		}
		return fsm.Next(SB), nil
	}
	if price <= 60 {
		return fsm.NextWith(SDone, price), nil
	}
	return fsm.Next(SA), nil
}

type sleeper struct {
	D    time.Duration `msgpack:"d"`
	Fail bool          `msgpack:"fail"`
}

func (sleeper) Kind() string { return "sleeper" }
func (s sleeper) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	select {
	case <-time.After(s.D):
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
	if s.Fail {
		return fsm.Result{}, fsm.Permanent(errors.New("sleeper failed"))
	}
	return fsm.NextWith(SDone, int(s.D/time.Millisecond)), nil
}

type collect struct{}

func (collect) Kind() string { return "collect" }
func (collect) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	bs, err := tc.Branches(ctx)
	if err != nil {
		return fsm.Result{}, err
	}
	var got []string
	for _, b := range bs {
		if b.Status == protocol.BranchSucceeded {
			v, err := fsm.BranchOutput[int](b)
			if err != nil {
				return fsm.Result{}, err
			}
			got = append(got, fmt.Sprintf("%d:%d", b.Index, v))
		} else {
			got = append(got, fmt.Sprintf("%d:%s", b.Index, b.Status))
		}
	}
	return fsm.NextWith(SDone, got), nil
}

type fanout struct {
	N int `msgpack:"n"`
}

func (fanout) Kind() string { return "fanout" }
func (f fanout) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	tasks := make([]fsm.Task, f.N)
	for i := range tasks {
		tasks[i] = sleeper{D: time.Duration(i) * time.Millisecond}
	}
	return fsm.SplitInto(fsm.JoinConfig[S]{Strategy: join.All(), JoinState: SC}, tasks...), nil
}

// order is a run input written for JSON, as most Go code writes structs.
type order struct {
	Customer string `json:"customer"`
	Amount   int    `json:"amount"`
}

// echoInput hands on the run input it decodes into an order.
type echoInput struct{}

func (echoInput) Kind() string { return "echo_input" }
func (echoInput) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var o order
	if err := tc.Input(&o); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(SDone, o), nil
}

type bundle struct {
	srv    *natstest.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	client *client.Client
}

func workflows() []worker.Definer {
	return []worker.Definer{
		fsm.New[S]("chain", SA).Register(SA, step{SB}).Register(SB, step{SC}).Register(SC, step{SDone}).Exit(SDone),
		fsm.New[S]("ghostly", SA).Register(SA, step{SB}).Register(SB, step{SGhost}).Exit(SDone),
		fsm.New[S]("negotiation", SA).Register(SA, offer{"seller"}, fsm.Minimal()).Register(SB, offer{"buyer"}, fsm.Minimal()).Exit(SDone, SRejected),
		fsm.New[S]("slow", SA).Register(SA, sleeper{D: time.Minute}).Exit(SDone),
		fsm.New[S]("quorum", SSplit).RegisterSplit(SSplit, []fsm.Task{
			sleeper{D: 50 * time.Millisecond}, sleeper{D: 150 * time.Millisecond},
			sleeper{D: 5 * time.Second}, sleeper{D: 10 * time.Second}},
			fsm.JoinConfig[S]{Strategy: join.Quorum(2), JoinState: SC}).Register(SC, collect{}).Exit(SDone),
		fsm.New[S]("dynamic", SA).Register(SA, fanout{N: 20}).Register(SC, collect{}).Exit(SDone),
		fsm.New[S]("echo_input", SA).Register(SA, echoInput{}).Exit(SDone),
		demo.Workflow(),
	}
}

func setup(t *testing.T) *bundle { return setupB(t) }

// setupB starts a server (with the events capture stream, so tests may
// replay events), a worker, a coordinator and a client.
func setupB(t testing.TB) *bundle {
	t.Helper()
	return setupWith(t, provision.Config{EventCapture: true})
}

func setupWith(t testing.TB, prov provision.Config) *bundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, prov)
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := &fsm.Registry{}
	fsm.Register[step](reg)
	fsm.Register[offer](reg)
	fsm.Register[sleeper](reg)
	fsm.Register[collect](reg)
	fsm.Register[fanout](reg)
	fsm.Register[echoInput](reg)
	demo.Register(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: workflows(), AckWait: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 8, RunStoreRetention: 3 * time.Second})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	return &bundle{srv: srv, nc: nc, js: js, client: cl}
}

func awaitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEngine(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("three-state chain", func(t *testing.T) {
		ctx := awaitCtx(t)
		out, err := b.client.Run(ctx, "chain", nil)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, out.Status)
		require.Equal(t, []string{"a", "b", "c", "done"}, out.Path)
		var last string
		require.NoError(t, out.Output(&last))
		require.Equal(t, "c", last)
	})

	t.Run("negotiation cycle through the store", func(t *testing.T) {
		ctx := awaitCtx(t)
		out, err := b.client.Run(ctx, "negotiation", nil)
		require.NoError(t, err)
		require.Equal(t, "done", out.State)
		require.Equal(t, []string{"a", "b", "a", "b", "a", "b", "done"}, out.Path)
		var price int
		require.NoError(t, out.Output(&price))
		require.Equal(t, 55, price)
	})

	t.Run("unregistered state fails with its name and the path", func(t *testing.T) {
		ctx := awaitCtx(t)
		out, err := b.client.Run(ctx, "ghostly", nil)
		require.ErrorIs(t, err, fsm.ErrWorkflow)
		require.Contains(t, err.Error(), `in state "b" (attempt 1, path a → b): workflow: its task chose state "ghost", which the workflow does not define`)
		var se *fsm.StateError
		require.ErrorAs(t, err, &se)
		require.Equal(t, []string{"a", "b"}, se.Path)
		require.Equal(t, "b", out.State)
		require.Equal(t, client.RunFailed, out.Status)
	})

	t.Run("unknown workflow and initial state are refused and dead-lettered", func(t *testing.T) {
		ctx := awaitCtx(t)
		_, err := b.client.Trigger(ctx, "nope", nil)
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		require.Contains(t, err.Error(), `unknown workflow "nope"`)
		_, err = b.client.Trigger(ctx, "chain", &client.TriggerOpts{InitialState: "zzz"})
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		require.Contains(t, err.Error(), `initial state "zzz"`)
		n := protocol.MustNames("")
		natstest.WaitFor(t, 10*time.Second, "two dead letters", func() bool {
			st, err := b.js.Stream(ctx, layout.DLQStream(n))
			return err == nil && st.CachedInfo().State.Msgs >= 2
		})
	})

	t.Run("idempotency key starts one run", func(t *testing.T) {
		ctx := awaitCtx(t)
		id1, err := b.client.Trigger(ctx, "chain", &client.TriggerOpts{IdempotencyKey: "order-42"})
		require.NoError(t, err)
		id2, err := b.client.Trigger(ctx, "chain", &client.TriggerOpts{IdempotencyKey: "order-42"})
		require.NoError(t, err)
		require.Equal(t, id1, id2)
		_, err = b.client.Await(ctx, id1)
		require.NoError(t, err)

		// ErrorIfExists says so, with the existing run's id; a new key
		// (or run id) is no error.
		id3, err := b.client.Trigger(ctx, "chain", &client.TriggerOpts{IdempotencyKey: "order-42", ErrorIfExists: true})
		require.ErrorIs(t, err, client.ErrRunExists)
		require.ErrorContains(t, err, "run "+id1+" of chain has the idempotency key order-42; nothing was started")
		require.Equal(t, id1, id3)
		id4, err := b.client.Trigger(ctx, "chain", &client.TriggerOpts{IdempotencyKey: "order-43", ErrorIfExists: true})
		require.NoError(t, err)
		require.NotEqual(t, id1, id4)
		id5, err := b.client.Trigger(ctx, "chain", &client.TriggerOpts{RunID: id4, ErrorIfExists: true})
		require.ErrorIs(t, err, client.ErrRunExists)
		require.Equal(t, id4, id5)
		id6, err := b.client.Trigger(ctx, "chain", &client.TriggerOpts{ErrorIfExists: true})
		require.NoError(t, err, "a fresh run id never exists")
		_, err = b.client.Trigger(ctx, "chain", &client.TriggerOpts{IdempotencyKey: "order-42", ErrorIfExists: true, NoWait: true})
		require.ErrorContains(t, err, "ErrorIfExists needs a coordinator's answer")
		for _, id := range []string{id4, id6} {
			_, err = b.client.Await(ctx, id) // ended before the next test watches chain's events
			require.NoError(t, err)
		}
	})

	t.Run("cancel ends a running run", func(t *testing.T) {
		ctx := awaitCtx(t)
		id, err := b.client.Trigger(ctx, "slow", nil)
		require.NoError(t, err)
		require.NoError(t, b.client.Cancel(ctx, id, "test"))
		out, err := b.client.Await(ctx, id)
		require.ErrorIs(t, err, fsm.ErrCancelled)
		require.Equal(t, client.RunCancelled, out.Status)
	})

	t.Run("json trigger from the nats CLI", func(t *testing.T) {
		ctx := awaitCtx(t)
		sub, err := b.nc.SubscribeSync("cano.event.chain.*.completed")
		require.NoError(t, err)
		msg := nats.NewMsg("cano.trigger.chain")
		msg.Header.Set("Content-Type", "application/json")
		msg.Data = []byte(`{"input": {"customer": "ada"}}`)
		_, err = b.js.PublishMsg(ctx, msg)
		require.NoError(t, err)
		var rec *client.Run
		for rec == nil || rec.Input(new(any)) != nil { // a run of an earlier test (no input) may end first
			m, err := sub.NextMsgWithContext(ctx)
			require.NoError(t, err, "no completed run with an input")
			var ev protocol.Event
			require.NoError(t, wirecodec.Decode(m.Data, &ev, 0))
			rec, err = b.client.Get(ctx, ev.RunID)
			require.NoError(t, err)
		}
		var in map[string]string
		require.NoError(t, rec.Input(&in), "a JSON input decodes with Run.Input")
		require.Equal(t, map[string]string{"customer": "ada"}, in)
	})

	t.Run("an input reaches a task the same by every path", func(t *testing.T) {
		// A struct with json tags, JSON as a person types it (canoctl, the
		// dashboard: json.RawMessage), a parsed JSON map, and a JSON
		// request from the nats CLI all decode into the task's order alike.
		ctx := awaitCtx(t)
		want := order{Customer: "ada", Amount: 5}
		for name, input := range map[string]any{
			"go struct":       want,
			"raw json":        json.RawMessage(`{"customer": "ada", "amount": 5}`),
			"parsed json map": map[string]any{"customer": "ada", "amount": 5},
		} {
			out, err := b.client.Run(ctx, "echo_input", &client.TriggerOpts{Input: input})
			require.NoError(t, err, name)
			var got order
			require.NoError(t, out.Output(&got), name)
			require.Equal(t, want, got, name)
		}
		msg := nats.NewMsg("cano.rpc.trigger.echo_input")
		msg.Header.Set("Content-Type", "application/json")
		msg.Data = []byte(`{"input": {"customer": "ada", "amount": 5}}`)
		reply, err := b.nc.RequestMsgWithContext(ctx, msg)
		require.NoError(t, err)
		var tr struct {
			RunID string `json:"run_id"`
		}
		require.NoError(t, json.Unmarshal(reply.Data, &tr), string(reply.Data))
		out, err := b.client.Await(ctx, tr.RunID)
		require.NoError(t, err)
		var got order
		require.NoError(t, out.Output(&got))
		require.Equal(t, want, got, "nats req")

		_, err = b.client.Trigger(ctx, "echo_input", &client.TriggerOpts{Input: json.RawMessage(`{"customer":`)})
		require.ErrorContains(t, err, "not valid JSON")
		// asynq's payloads are JSON in a []byte: refused, with what to pass.
		_, err = b.client.Trigger(ctx, "echo_input", &client.TriggerOpts{Input: []byte(`{"customer":"ada","amount":5}`)})
		require.ErrorContains(t, err, "pass json.RawMessage(b) to send JSON")
		_, err = b.client.Trigger(ctx, "echo_input", &client.TriggerOpts{Input: []byte{0x92, 0x01}})
		require.ErrorContains(t, err, "not one msgpack value")
		_, err = b.client.Trigger(ctx, "echo_input", &client.TriggerOpts{Input: []byte{}})
		require.NoError(t, err, "an empty []byte is no input, as nil")
		bin, err := wirecodec.EncodeValue(map[string]any{"customer": "ada", "amount": 5})
		require.NoError(t, err)
		out, err = b.client.Run(ctx, "echo_input", &client.TriggerOpts{Input: bin})
		require.NoError(t, err, "a []byte of msgpack is sent as is")
		got = order{}
		require.NoError(t, out.Output(&got))
		require.Equal(t, want, got, "msgpack bytes")
	})

	t.Run("quorum joins after the threshold branch and hands outputs on", func(t *testing.T) {
		ctx := awaitCtx(t)
		out, err := b.client.Run(ctx, "quorum", nil)
		require.NoError(t, err)
		var got []string
		require.NoError(t, out.Output(&got))
		require.Equal(t, []string{"0:50", "1:150", "2:cancelled", "3:cancelled"}, got)
	})

	t.Run("dynamic split over a runtime list", func(t *testing.T) {
		ctx := awaitCtx(t)
		out, err := b.client.Run(ctx, "dynamic", nil)
		require.NoError(t, err)
		var got []string
		require.NoError(t, out.Output(&got))
		require.Len(t, got, 20)
		require.Equal(t, "19:19", got[19])
	})

	t.Run("the seed example: parallel fetch through the store", func(t *testing.T) {
		ctx := awaitCtx(t)
		out, err := b.client.Run(ctx, demo.WorkflowName, nil)
		require.NoError(t, err)
		var joined string
		require.NoError(t, out.Output(&joined))
		require.Equal(t, "data_from_1,data_from_2,data_from_3", joined)
	})

	t.Run("garbage on triggers and results is dead-lettered; work goes on", func(t *testing.T) {
		ctx := awaitCtx(t)
		n := protocol.MustNames("")
		st, err := b.js.Stream(ctx, layout.DLQStream(n))
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		before := info.State.Msgs
		_, err = b.js.Publish(ctx, "cano.trigger.chain", []byte("\xc1garbage"))
		require.NoError(t, err)
		_, err = b.js.Publish(ctx, "cano.result.r1", []byte{0x93, 0x01})
		require.NoError(t, err)
		natstest.WaitFor(t, 10*time.Second, "two more dead letters", func() bool {
			info, err := st.Info(ctx)
			return err == nil && info.State.Msgs >= before+2
		})
		out, err := b.client.Run(ctx, "chain", nil)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, out.Status)
	})
}

func TestThousandConcurrentRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := awaitCtx(t)
	const n = 1000
	ids := make([]string, n)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := b.client.Trigger(ctx, "chain", &client.TriggerOpts{NoWait: true})
			if err != nil {
				failed.Add(1)
				return
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	require.Zero(t, failed.Load())
	for _, id := range ids {
		out, err := b.client.Await(ctx, id)
		if err != nil {
			rec, gerr := b.client.Get(context.Background(), id)
			t.Logf("run %s: %+v %v", id, rec, gerr)
		}
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "c", "done"}, out.Path)
	}
}
