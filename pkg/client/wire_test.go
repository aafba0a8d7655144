package client_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/fsmbridge"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

// TestWireReadable checks what a person with the nats CLI sees: events,
// trigger replies and cancel requests in JSON.
func TestWireReadable(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("events are one line of JSON on a plain subscription", func(t *testing.T) {
		ctx := awaitCtx(t)
		sub, err := b.nc.SubscribeSync("cano.event.chain.>")
		require.NoError(t, err)
		defer func() { _ = sub.Unsubscribe() }()
		id, err := b.client.Trigger(ctx, "chain", nil)
		require.NoError(t, err)
		type wireError struct {
			Category string `json:"category"`
			Message  string `json:"message"`
		}
		type wireEvent struct {
			V        int             `json:"v"`
			Type     string          `json:"type"`
			RunID    string          `json:"run_id"`
			Workflow string          `json:"workflow"`
			State    string          `json:"state"`
			Status   string          `json:"status"`
			Time     time.Time       `json:"time"`
			Path     []string        `json:"path"`
			Output   json.RawMessage `json:"output"`
			Error    *wireError      `json:"error"`
		}
		var types []string
		for {
			m, err := sub.NextMsg(20 * time.Second)
			require.NoError(t, err)
			require.Equal(t, "application/json", m.Header.Get("Content-Type"))
			require.NotContains(t, string(m.Data), "\n")
			var ev wireEvent
			require.NoError(t, json.Unmarshal(m.Data, &ev), string(m.Data))
			if ev.RunID != id {
				continue
			}
			require.Equal(t, 1, ev.V)
			require.Equal(t, "chain", ev.Workflow)
			require.WithinDuration(t, time.Now(), ev.Time, time.Minute)
			require.Equal(t, "cano.event.chain."+id+"."+ev.Type, m.Subject)
			types = append(types, ev.Type)
			if ev.Type == "completed" {
				require.Equal(t, []string{"a", "b", "c", "done"}, ev.Path)
				require.JSONEq(t, `"c"`, string(ev.Output), "the output is JSON")
				break
			}
		}
		require.Equal(t, "started", types[0])
		require.Contains(t, types, "state")

		// The client reads the same events.
		out, err := b.client.Await(ctx, id)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, out.Status)
	})

	t.Run("a JSON cancel request cancels a run", func(t *testing.T) {
		ctx := awaitCtx(t)
		id, err := b.client.Trigger(ctx, "slow", nil)
		require.NoError(t, err)
		msg := nats.NewMsg("cano.control.cancel." + id)
		msg.Header.Set("Content-Type", "application/json")
		msg.Data = []byte(`{"reason": "changed my mind"}`)
		_, err = b.js.PublishMsg(ctx, msg)
		require.NoError(t, err)
		out, err := b.client.Await(ctx, id)
		require.ErrorIs(t, err, fsm.ErrCancelled)
		require.Equal(t, client.RunCancelled, out.Status)
		require.Contains(t, err.Error(), "changed my mind")
	})

	t.Run("a JSON trigger gets a JSON reply", func(t *testing.T) {
		ctx := awaitCtx(t)
		inbox := nats.NewInbox()
		sub, err := b.nc.SubscribeSync(inbox)
		require.NoError(t, err)
		defer func() { _ = sub.Unsubscribe() }()
		msg := nats.NewMsg("cano.trigger.chain")
		msg.Header.Set("Content-Type", "application/json")
		msg.Header.Set(protocol.HeaderReplyTo, inbox)
		msg.Data = []byte(`{"input": {"customer": "ada"}}`)
		_, err = b.js.PublishMsg(ctx, msg)
		require.NoError(t, err)
		m, err := sub.NextMsg(20 * time.Second)
		require.NoError(t, err)
		var reply struct {
			RunID string `json:"run_id"`
		}
		require.NoError(t, json.Unmarshal(m.Data, &reply), string(m.Data))
		require.NotEmpty(t, reply.RunID)
		_, err = b.client.Await(ctx, reply.RunID)
		require.NoError(t, err)
	})

	t.Run("bad input says what to do", func(t *testing.T) {
		ctx := awaitCtx(t)
		inbox := nats.NewInbox()
		sub, err := b.nc.SubscribeSync(inbox)
		require.NoError(t, err)
		defer func() { _ = sub.Unsubscribe() }()
		dlq, err := b.nc.SubscribeSync("cano.dlq.trigger")
		require.NoError(t, err)
		defer func() { _ = dlq.Unsubscribe() }()

		// A JSON body that is not the envelope.
		msg := nats.NewMsg("cano.trigger.chain")
		msg.Header.Set("Content-Type", "application/json")
		msg.Header.Set(protocol.HeaderReplyTo, inbox)
		msg.Data = []byte(`{"customer": "ada"}`)
		_, err = b.js.PublishMsg(ctx, msg)
		require.NoError(t, err)
		m, err := sub.NextMsg(20 * time.Second)
		require.NoError(t, err)
		var reply struct {
			Error struct {
				Category string `json:"category"`
				Message  string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(m.Data, &reply), string(m.Data))
		require.Equal(t, "configuration", reply.Error.Category)
		require.Contains(t, reply.Error.Message, `{"input": <your input>}`)
		require.Contains(t, reply.Error.Message, "Content-Type: application/json")
		require.Contains(t, reply.Error.Message, `unknown field "customer"`)
		require.NotContains(t, reply.Error.Message, "configuration")
		require.True(t, strings.HasPrefix(reply.Error.Message, "the trigger did not decode: "), "it says the message is at fault: %s", reply.Error.Message)
		err = fsmbridge.FromErrorInfo(&protocol.ErrorInfo{Category: protocol.CategoryConfiguration, Message: reply.Error.Message})
		require.Equal(t, 1, strings.Count(err.Error(), "configuration"), err.Error())

		letter, err := dlq.NextMsg(20 * time.Second)
		require.NoError(t, err)
		require.Equal(t, "trigger", letter.Header.Get("Cano-Source"))
		require.Equal(t, "malformed", letter.Header.Get("Cano-Category"))
		require.Contains(t, letter.Header.Get("Cano-Reason"), `{"input": <your input>}`)
		require.NotContains(t, letter.Header.Get("Cano-Reason"), "configuration", "a bad body is not said to be a configuration error")
		require.Contains(t, letter.Header.Get("Cano-Reason"), "(the sender was told so in its reply)", "its sender had a reply-to header")

		// JSON without the header: the reason says to add it.
		msg = nats.NewMsg("cano.trigger.chain")
		msg.Data = []byte(`{"input": 1}`)
		_, err = b.js.PublishMsg(ctx, msg)
		require.NoError(t, err)
		letter, err = dlq.NextMsg(20 * time.Second)
		require.NoError(t, err)
		require.Contains(t, letter.Header.Get("Cano-Reason"), "add the header Content-Type: application/json")
		require.NotContains(t, letter.Header.Get("Cano-Reason"), "the sender was told", "a publish without a reply-to header is answered by no one")
	})
}
