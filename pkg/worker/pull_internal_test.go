package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
)

// pullRig runs one pull loop whose requests go to a subject the test
// answers in the server's place (statuses only: commands are the end-to-end
// tests' part).
type pullRig struct {
	t        *testing.T
	nc       *nats.Conn
	w        *Worker
	p        *puller
	requests chan *nats.Msg
	stop     context.CancelFunc
	stopped  chan struct{}
}

func newPullRig(t *testing.T, slots, share int) *pullRig {
	t.Helper()
	return newPullRigOf(t, slots, share, true)
}

func newPullRigOf(t *testing.T, slots, share int, long bool) *pullRig {
	t.Helper()
	srv := natstest.Start(t)
	nc, _ := srv.Connect(t)
	r := &pullRig{t: t, nc: nc, requests: make(chan *nats.Msg, 64), stopped: make(chan struct{})}
	sub, err := nc.ChanSubscribe("test.next", r.requests)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	r.w = &Worker{nc: nc, log: slog.New(slog.DiscardHandler), slots: make(chan struct{}, slots)}
	r.p, err = r.w.newPuller("test.next", "k", share, long)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.w.pulls.Add(1)
	go func() { r.w.pull(ctx, r.p); close(r.stopped) }()
	t.Cleanup(func() { cancel(); <-r.stopped })
	return r
}

// pullBody is a pull request's body.
type pullBody struct {
	Batch         int   `json:"batch"`
	Expires       int64 `json:"expires"`
	IdleHeartbeat int64 `json:"idle_heartbeat"`
}

// next waits for the loop's next request.
func (r *pullRig) next() (*nats.Msg, pullBody) {
	r.t.Helper()
	m := natstest.Recv(r.t, r.requests, 3*pullCheck)
	var b pullBody
	require.NoError(r.t, json.Unmarshal(m.Data, &b))
	return m, b
}

// status answers req as the server does with a status (no body).
func (r *pullRig) status(req *nats.Msg, code, description string) {
	r.t.Helper()
	m := nats.NewMsg(req.Reply)
	m.Header.Set("Status", code)
	m.Header.Set("Description", description)
	require.NoError(r.t, r.nc.PublishMsg(m))
}

func TestPullerAsksForItsShareAndHoldsTheSlots(t *testing.T) {
	t.Parallel()
	r := newPullRig(t, 8, 3)
	req, body := r.next()
	require.Equal(t, 3, body.Batch)
	require.Equal(t, int64(pullExpires), body.Expires)
	require.Equal(t, int64(pullHeartbeat), body.IdleHeartbeat)
	require.Len(t, r.w.slots, 3, "the request holds its slots")
	require.NotEmpty(t, req.Reply)
}

// With fewer slots than twice the consumers, requests are short, so the
// consumers take turns with the slots.
func TestPullerShortRequests(t *testing.T) {
	t.Parallel()
	r := newPullRigOf(t, 2, 1, false)
	first, body := r.next()
	require.Equal(t, 1, body.Batch)
	require.Equal(t, int64(pullShortExpires), body.Expires)
	require.Zero(t, body.IdleHeartbeat, "no heartbeat")
	r.status(first, "408", "Request Timeout")
	second, _ := r.next()
	require.Equal(t, r.p.prefix+"2", second.Reply)
	// One never ended is taken as lost.
	third, _ := r.next()
	require.Equal(t, r.p.prefix+"3", third.Reply)
}

// A status other than a heartbeat ends the request: its slots are freed
// and the next request, with its own reply subject, holds them again (at
// once after an expiry, after pullRetryDelay after a refusal).
func TestPullerPullsAgainWhenARequestEnds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ code, description string }{
		{"408", "Request Timeout"},
		{"409", "Exceeded MaxWaiting"},
		{"409", "Leadership Change"},
	} {
		t.Run(tc.code+" "+tc.description, func(t *testing.T) {
			t.Parallel()
			r := newPullRig(t, 8, 3)
			first, _ := r.next()
			r.status(first, tc.code, tc.description)
			second, body := r.next()
			require.Equal(t, r.p.prefix+"2", second.Reply)
			require.Equal(t, 3, body.Batch)
			require.Len(t, r.w.slots, 3, "the ended request's slots were freed")
		})
	}
}

func TestPullerIgnoresTheStatusOfARequestGivenUpOn(t *testing.T) {
	t.Parallel()
	r := newPullRig(t, 8, 3)
	first, _ := r.next()
	r.status(first, "408", "Request Timeout")
	second, _ := r.next()
	// A second end of the first request (it was given up on): nothing
	// follows from it, so the request after the second one's end is the
	// third, not the fourth.
	r.status(first, "409", "Leadership Change")
	r.status(second, "408", "Request Timeout")
	third, _ := r.next()
	require.Equal(t, r.p.prefix+"3", third.Reply)
	select {
	case m := <-r.requests:
		t.Fatalf("a request no status called for: %s", m.Reply)
	default:
	}
}

func TestPullerReplacesARequestNotHeardFrom(t *testing.T) {
	t.Parallel()
	r := newPullRig(t, 8, 3)
	first, _ := r.next()
	// No heartbeat: the request is taken as lost within two checks.
	second, _ := r.next()
	require.NotEqual(t, first.Reply, second.Reply)
	require.Len(t, r.w.slots, 3, "the lost request's slots went to the new one")
}

func TestPullerKeepsARequestItHearsFrom(t *testing.T) {
	t.Parallel()
	r := newPullRig(t, 8, 3)
	first, _ := r.next()
	// Heartbeats across two checks keep the request.
	deadline := time.Now().Add(2*pullCheck + time.Second)
	tick := time.NewTicker(pullHeartbeat / 2)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		r.status(first, "100", "Idle Heartbeat")
		select {
		case m := <-r.requests:
			t.Fatalf("a heartbeating request was replaced by %s", m.Reply)
		case <-tick.C:
		}
	}
}

func TestPullerStopFreesItsSlotsAndSubscription(t *testing.T) {
	t.Parallel()
	r := newPullRig(t, 8, 3)
	r.next()
	r.stop()
	natstest.Recv(t, r.stopped, pullDrainTimeout+5*time.Second)
	require.Empty(t, r.w.slots, "the open request's slots were freed")
	require.False(t, r.p.sub.IsValid(), "the subscription is gone")
}
