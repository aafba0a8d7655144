package leader_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/leader"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/startstop"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// ttl is generous: CI runs this beside other packages on two cores, and a
// renewal slower than RenewInterval (ttl/3) deposes the leader by design.
// 2 s saw a renewal time out under CI load.
const ttl = 4 * time.Second

// candidate records the terms one elector goes through.
type candidate struct {
	e       *leader.Elector
	elected chan leader.Term
	deposed chan error

	mu     sync.Mutex // guards active
	active bool
}

func (c *candidate) isActive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

type testBundle struct {
	js    jetstream.JetStream
	kv    jetstream.KeyValue
	names protocol.Names
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	s := natstest.StartProvisioned(t, provision.Config{LeaderTTL: ttl})
	_, js := s.Connect(t)
	names := protocol.MustNames("")
	kv, err := js.KeyValue(context.Background(), layout.LeaderBucket(names))
	require.NoError(t, err)
	return &testBundle{js: js, kv: kv, names: names}
}

func (b *testBundle) newCandidate(t *testing.T, id string) *candidate {
	t.Helper()
	c := &candidate{elected: make(chan leader.Term, 16), deposed: make(chan error, 16)}
	e, err := leader.New(b.js, leader.Config{
		Bucket: layout.LeaderBucket(b.names),
		ID:     id,
		OnElected: func(ctx context.Context, term leader.Term) {
			c.mu.Lock()
			c.active = true
			c.mu.Unlock()
			c.elected <- term
			<-ctx.Done()
			c.mu.Lock()
			c.active = false
			c.mu.Unlock()
		},
		OnDeposed: func(_ leader.Term, cause error) { c.deposed <- cause },
	})
	require.NoError(t, err)
	c.e = e
	require.NoError(t, e.Start(context.Background()))
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return c
}

// leadThenHandOver checks that one of two candidates leads, keeps its lease
// across several renewals, and on Stop hands over to the other without
// waiting for the TTL. It returns the cause if the leader was deposed by
// something other than the test (a store error under load) instead.
func leadThenHandOver(t *testing.T) (deposedBy error) {
	t.Helper()
	b := setup(t)
	a, c := b.newCandidate(t, "a"), b.newCandidate(t, "c")
	lead, term := waitLeader(t, 3*time.Second, a, c)
	require.NotZero(t, term.Epoch)
	other := a
	if lead == a {
		other = c
	}
	// The leader keeps its lease across several renewals: the follower is
	// not elected for two TTLs.
	select {
	case cause := <-lead.deposed:
		return cause
	case <-other.elected:
		select {
		case cause := <-lead.deposed:
			return cause
		case <-time.After(time.Second):
		}
		t.Fatal("follower elected while the leader renews")
	case <-time.After(2 * ttl):
	}
	tm, ok := lead.e.Leading()
	if !ok {
		select {
		case cause := <-lead.deposed:
			return cause
		case <-time.After(time.Second):
		}
	}
	require.True(t, ok)
	require.Equal(t, term, tm)
	got := natstest.Recv(t, lead.elected, time.Second)
	require.Equal(t, term, got)

	start := time.Now()
	require.NoError(t, lead.e.Stop(context.Background()))
	require.False(t, lead.isActive(), "OnElected returned before Stop returned")
	select {
	case cause := <-lead.deposed:
		return cause // deposed before Stop: its release had nothing to release
	default:
	}
	next := natstest.Recv(t, other.elected, ttl)
	require.Less(t, time.Since(start), ttl/2, "release hands over without waiting for the TTL")
	require.Greater(t, next.Epoch, term.Epoch, "epochs grow")
	_, ok = lead.e.Leading()
	require.False(t, ok)
	return nil
}

// waitLeader waits until exactly one of cs leads and returns it.
func waitLeader(t *testing.T, timeout time.Duration, cs ...*candidate) (*candidate, leader.Term) {
	t.Helper()
	var lead *candidate
	var term leader.Term
	natstest.WaitFor(t, timeout, "a leader", func() bool {
		n := 0
		for _, c := range cs {
			if tm, ok := c.e.Leading(); ok {
				n++
				lead, term = c, tm
			}
		}
		return n == 1
	})
	return lead, term
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	on := func(context.Context, leader.Term) {}
	tests := []struct {
		name string
		cfg  leader.Config
		want string
	}{
		{"no bucket", leader.Config{OnElected: on}, "Bucket"},
		{"no callback", leader.Config{Bucket: "b"}, "OnElected"},
		{"short ttl", leader.Config{Bucket: "b", OnElected: on, TTL: time.Millisecond}, "TTL"},
		{"slow renew", leader.Config{Bucket: "b", OnElected: on, TTL: 3 * time.Second, RenewInterval: 2 * time.Second}, "RenewInterval"},
		{"negative renew", leader.Config{Bucket: "b", OnElected: on, RenewInterval: -1}, "RenewInterval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := leader.New(fakeJS{}, tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// fakeJS only satisfies the type for config validation; New does no I/O.
type fakeJS struct{ jetstream.JetStream }

func TestElection(t *testing.T) {
	t.Parallel()

	t.Run("OneLeadsThenHandsOverOnStop", func(t *testing.T) {
		t.Parallel()
		// A renewal the store does not answer in time deposes the leader by
		// design (it must stop before its lease could expire anywhere). Under
		// CI load that happens now and then, and is not what this test is
		// about: such a try is logged and run again on a fresh server.
		for try := 1; ; try++ {
			cause := leadThenHandOver(t)
			if cause == nil {
				return
			}
			require.Less(t, try, 3, "the leader was deposed by the store in every try: %v", cause)
			t.Logf("try %d: the leader stepped down on a store error (%v); again on a fresh server", try, cause)
		}
	})

	t.Run("AbandonedLeaseTakenOverWithinBound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		// Simulate a SIGKILLed leader: a lease written and never renewed
		// nor released.
		_, err := b.kv.Create(context.Background(), layout.LeaderKey, []byte("dead"))
		require.NoError(t, err)
		start := time.Now()
		c := b.newCandidate(t, "c")
		natstest.Recv(t, c.elected, 3*ttl)
		// TTL + one renewal interval, plus scheduling slack for -race.
		require.Less(t, time.Since(start), ttl+ttl/3+700*time.Millisecond)
	})

	t.Run("StepsDownWhenLeaseOverwritten", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.newCandidate(t, "c")
		term := natstest.Recv(t, c.elected, 3*time.Second)
		_, err := b.kv.Put(context.Background(), layout.LeaderKey, []byte("intruder"))
		require.NoError(t, err)
		cause := natstest.Recv(t, c.deposed, ttl/3)
		require.ErrorContains(t, cause, "lease")
		require.False(t, c.isActive())
		// The intruder never renews: c wins again after expiry.
		next := natstest.Recv(t, c.elected, 3*ttl)
		require.Greater(t, next.Epoch, term.Epoch)
	})

	t.Run("StepsDownOnRenewalFailure", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.newCandidate(t, "c")
		natstest.Recv(t, c.elected, 3*time.Second)
		// Deleting the bucket makes the next renewal fail.
		require.NoError(t, b.js.DeleteKeyValue(context.Background(), layout.LeaderBucket(b.names)))
		cause := natstest.Recv(t, c.deposed, ttl)
		require.Error(t, cause)
		require.False(t, c.isActive())
	})

	t.Run("StopIsIdempotentAndStartAfterStopFails", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		e, err := leader.New(b.js, leader.Config{Bucket: layout.LeaderBucket(b.names), OnElected: func(context.Context, leader.Term) {}})
		require.NoError(t, err)
		require.NoError(t, e.Stop(context.Background()))
		require.NoError(t, e.Stop(context.Background()))
		require.ErrorIs(t, e.Start(context.Background()), startstop.ErrAlreadyStarted)
	})

	t.Run("RefusesTTLMismatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		e, err := leader.New(b.js, leader.Config{Bucket: layout.LeaderBucket(b.names), TTL: 5 * time.Second,
			OnElected: func(context.Context, leader.Term) {}})
		require.NoError(t, err)
		require.ErrorContains(t, e.Start(context.Background()), "differs")
	})
}

// A renewal cut short by Stop can still land on the server, moving the
// lease's revision past the one the leader knows. Release must still hand
// over at once (the lease holds the leader's value), not leave the lease
// to expire. The landed renewal is simulated by writing the leader's own
// value under the lease key.
func TestReleaseAfterUnseenRenewal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, c := b.newCandidate(t, "a"), b.newCandidate(t, "c")
	lead, term := waitLeader(t, 3*time.Second, a, c)
	other, id := a, "c"
	if lead == a {
		other, id = c, "a"
	}
	_, err := b.kv.Put(context.Background(), layout.LeaderKey, []byte(id))
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, lead.e.Stop(context.Background()))
	next := natstest.Recv(t, other.elected, ttl)
	require.Less(t, time.Since(start), ttl/2, "released at once, not left to expire")
	require.Greater(t, next.Epoch, term.Epoch)
}
