package coordinator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

type refusalBundle struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names protocol.Names
	cl    *client.Client
}

func setupRefusals(t *testing.T) (*refusalBundle, context.Context) {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: []worker.Definer{demo.OneTask()}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 4, AckWait: time.Second})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	_, err = cl.Run(ctx, demo.OneTaskName, nil) // the definition is known
	require.NoError(t, err)
	return &refusalBundle{nc: nc, js: js, names: protocol.MustNames(""), cl: cl}, ctx
}

// trigger publishes a raw trigger with a reply subject and returns the
// coordinator's answer.
func (b *refusalBundle) trigger(ctx context.Context, t *testing.T, data []byte, json bool) *protocol.TriggerReply {
	t.Helper()
	inbox := b.nc.NewRespInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	msg := &nats.Msg{Subject: b.names.TriggerSubject(demo.OneTaskName), Data: data, Header: nats.Header{}}
	msg.Header.Set(protocol.HeaderReplyTo, inbox)
	if json {
		msg.Header.Set(protocol.HeaderContentType, protocol.ContentTypeJSON)
	}
	_, err = b.js.PublishMsg(ctx, msg)
	require.NoError(t, err)
	reply, err := sub.NextMsgWithContext(ctx)
	require.NoError(t, err)
	var tr protocol.TriggerReply
	require.NoError(t, wirecodec.Decode(reply.Data, &tr, 0))
	return &tr
}

// letters waits for n trigger dead letters (a letter is published after
// the reply) and returns them.
func (b *refusalBundle) letters(ctx context.Context, t *testing.T, n int) []client.DeadLetter {
	t.Helper()
	var letters []client.DeadLetter
	natstest.WaitFor(t, 30*time.Second, "dead letters", func() bool {
		var err error
		letters, err = b.cl.DeadLetters(ctx, &client.DeadLetterFilter{Source: "trigger"})
		require.NoError(t, err)
		return len(letters) >= n
	})
	require.Len(t, letters, n)
	return letters
}

// settled waits until the coordinators' trigger consumer holds nothing
// un-acknowledged and has redelivered nothing.
func (b *refusalBundle) settled(ctx context.Context, t *testing.T) {
	t.Helper()
	cons, err := b.js.Consumer(ctx, layout.TriggersStream(b.names), coordinator.ConsumerDefault)
	require.NoError(t, err)
	natstest.WaitFor(t, 30*time.Second, "the trigger consumer to settle", func() bool {
		info, err := cons.Info(ctx)
		require.NoError(t, err)
		require.Zero(t, info.NumRedelivered, "a refused trigger is never redelivered")
		return info.NumAckPending == 0 && info.NumPending == 0
	})
}

// TestOversizedTriggerRefused: a JSON trigger of about 2 MiB (accepted by
// the stream, whose messages may be 4 MiB) would make a run record over
// the runs bucket's limit: it is refused up front with an error that says
// the size, the limit and what to do, dead-lettered with that reason, and
// not redelivered; no run record is written.
func TestOversizedTriggerRefused(t *testing.T) {
	t.Parallel()
	b, ctx := setupRefusals(t)
	body := []byte(`{"input": "` + strings.Repeat("a", 2<<20) + `"}`)
	tr := b.trigger(ctx, t, body, true)
	require.NotNil(t, tr.Error, "the trigger is refused")
	for _, want := range []string{"would be 2097", "limited to", "max value size, 1048576", "pass a reference"} {
		require.Contains(t, tr.Error.Message, want)
	}
	err := fsmbridge.FromErrorInfo(tr.Error)
	require.ErrorIs(t, err, fsm.ErrConfiguration)

	letters := b.letters(ctx, t, 1)
	require.Contains(t, letters[0].Reason, "pass a reference")
	require.Equal(t, "too_large", letters[0].Category)
	b.settled(ctx, t)
	runs, err := b.cl.List(ctx, nil)
	require.NoError(t, err)
	require.Len(t, runs, 1, "only the warm-up run has a record")
}

// TestRunIDWithIdempotencyKeyRefused: a trigger naming both a run id and an
// idempotency key is refused (msgpack and JSON), not run under one of them.
func TestRunIDWithIdempotencyKeyRefused(t *testing.T) {
	t.Parallel()
	b, ctx := setupRefusals(t)
	raw, err := wirecodec.Encode(&protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.OneTaskName,
		IdempotencyKey: "k1", RunID: "r1"})
	require.NoError(t, err, "Encode does not validate")
	for name, c := range map[string]struct {
		data []byte
		json bool
	}{
		"msgpack": {raw, false},
		"json":    {[]byte(`{"run_id": "r1", "idempotency_key": "k1"}`), true},
	} {
		tr := b.trigger(ctx, t, c.data, c.json)
		require.NotNil(t, tr.Error, name)
		require.Contains(t, tr.Error.Message, "set together with idempotency_key", name)
	}
	_, err = b.cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{RunID: "r1", IdempotencyKey: "k1"})
	require.ErrorContains(t, err, "set together with idempotency_key")
	b.letters(ctx, t, 2)
	b.settled(ctx, t)
	_, err = b.cl.Get(ctx, "r1")
	require.ErrorIs(t, err, client.ErrNotFound)
}
