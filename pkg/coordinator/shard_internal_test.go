package coordinator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// shardRig is a started coordinator on an embedded JetStream server with
// the demo chain registered, a shard under test whose runs bucket goes
// through a faultKV, and another shard (another coordinator, as far as
// the records are concerned) writing the same bucket without faults. The
// shards are driven directly: no inputs flow through the streams.
type shardRig struct {
	t     *testing.T
	ctx   context.Context
	c     *Coordinator
	s     *shard
	kv    *faultKV
	other *shard
}

func newShardRig(t *testing.T) *shardRig {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	defs, err := js.KeyValue(ctx, layout.DefinitionsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	def, err := demo.Chain().Definition()
	require.NoError(t, err)
	if def.Version == "" {
		def.Version = "v1"
	}
	data, err := wirecodec.Encode(def)
	require.NoError(t, err)
	_, err = defs.Put(ctx, layout.DefinitionKey(def.Name, def.Version), data)
	require.NoError(t, err)
	_, err = defs.PutString(ctx, layout.LatestDefinitionKey(def.Name), def.Version)
	require.NoError(t, err)

	c, err := New(nc, Config{Shards: 1})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		require.NoError(t, c.Stop(sctx))
	})
	s := newShard(c, 100)
	kv := newFaultKV(s.kv)
	s.kv = kv
	other := newShard(c, 101)
	other.mustWait = true // driven outside its loop, which would take the answers of stores sent
	return &shardRig{t: t, ctx: ctx, c: c, s: s, kv: kv, other: other}
}

// settled is the next acknowledgement sh handed its ack loop.
func (r *shardRig) settled(sh *shard) pendingAck {
	r.t.Helper()
	return natstest.Recv(r.t, sh.acks, 10*time.Second)
}

func (r *shardRig) noneSettled(sh *shard) {
	r.t.Helper()
	select {
	case p := <-sh.acks:
		r.t.Fatalf("unexpected acknowledgement of %v", p.msg)
	default:
	}
}

// start creates run id through sh (its record at step 0, state s0).
func (r *shardRig) start(sh *shard, id string) {
	r.t.Helper()
	sh.trigger(r.ctx, job{runID: id, msg: &inputMsg{subject: "trigger"}, trig: &protocol.Trigger{V: protocol.SchemaVersion,
		Workflow: demo.ChainName}})
	require.Empty(r.t, r.settled(sh).term, "run %s started", id)
}

// move applies a result through sh: the run at step goes to next.
func (r *shardRig) move(sh *shard, id string, step uint32, next string) {
	r.t.Helper()
	sh.apply(r.ctx, []job{r.result(id, step, next)})
	require.Empty(r.t, r.settled(sh).term)
}

func (r *shardRig) result(id string, step uint32, next string) job {
	return job{runID: id, msg: &inputMsg{subject: "result"}, res: &protocol.TaskResult{V: protocol.SchemaVersion, RunID: id,
		Step: step, Branch: -1, Attempts: 1, Status: protocol.ResultOK, Next: next}}
}

// record is run id's record in the bucket and its revision.
func (r *shardRig) record(id string) (*protocol.RunRecord, uint64) {
	r.t.Helper()
	e, err := r.c.runs.Get(r.ctx, layout.RunKey(id))
	require.NoError(r.t, err)
	var rec protocol.RunRecord
	require.NoError(r.t, wirecodec.Decode(e.Value(), &rec, 0))
	return &rec, e.Revision()
}

// rewrite writes run id's record again unchanged: a later revision, as a
// concurrent writer leaves.
func (r *shardRig) rewrite(id string) {
	e, err := r.c.runs.Get(r.ctx, layout.RunKey(id))
	require.NoError(r.t, err)
	_, err = r.c.runs.Update(r.ctx, layout.RunKey(id), e.Value(), e.Revision())
	require.NoError(r.t, err)
}

func settledBy(p pendingAck) []jetstream.Msg { return append([]jetstream.Msg{p.msg}, p.more...) }

// TestShardUnderKVFaults drives one shard's apply and trigger paths over a
// real runs bucket with injected faults: compare-and-set conflicts (real
// ones, from a concurrent writer, and injected ones past the retry bound),
// a stale cache, timeouts and "not found". Each case checks the reads and
// writes the shard made, how each input was settled, and the record left.
func TestShardUnderKVFaults(t *testing.T) {
	t.Parallel()
	r := newShardRig(t)
	conflict := fmt.Errorf("injected: %w", jetstream.ErrKeyRevisionMismatch)
	n := 0
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, id string)
	}{
		{"a conflict from a concurrent rewrite is re-read and written again", func(t *testing.T, id string) {
			r.start(r.s, id)
			r.kv.interfere("update", func() { r.rewrite(id) })
			in := r.result(id, 0, "s1")
			r.s.apply(r.ctx, []job{in})
			p := r.settled(r.s)
			require.Same(t, in.msg, p.msg)
			require.Empty(t, p.term)
			require.Len(t, p.futures, 1, "the command of s1, published once")
			require.Equal(t, 2, r.kv.count("update"), "the conflicting write, then the one that took")
			require.Equal(t, 1, r.kv.count("get"), "one re-read past the conflicting revision")
			rec, rev := r.record(id)
			require.Equal(t, "s1", rec.State)
			require.Equal(t, rev, r.s.cache[id].rev, "the written revision is cached")
		}},
		{"a conflict with another coordinator's move makes the input a duplicate", func(t *testing.T, id string) {
			r.start(r.s, id)
			r.move(r.other, id, 0, "s1") // this shard's cache still has step 0
			in := r.result(id, 0, "s1")  // the same result, redelivered here
			r.s.apply(r.ctx, []job{in})
			p := r.settled(r.s)
			require.Same(t, in.msg, p.msg)
			require.Len(t, p.futures, 1, "what the record owes (s1's command) is re-published (redrives)")
			require.Empty(t, p.term)
			require.Equal(t, 1, r.kv.count("update"))
			require.Equal(t, 1, r.kv.count("get"))
			_, rev := r.record(id)
			require.Equal(t, rev, r.s.cache[id].rev, "the re-read record is cached")
		}},
		{"a duplicate on the cache is re-read before it is called one", func(t *testing.T, id string) {
			r.start(r.s, id)
			r.move(r.s, id, 0, "s1")
			in := r.result(id, 0, "s1")
			r.s.apply(r.ctx, []job{in})
			p := r.settled(r.s)
			require.Same(t, in.msg, p.msg)
			require.Len(t, p.futures, 1, "what the record owes is re-published (redrives)")
			require.Equal(t, 1, r.kv.count("get"), "one fresh read")
			require.Equal(t, 1, r.kv.count("update"), "only the first move wrote")
		}},
		{"a result ahead of a stale cache is applied on the leader's record", func(t *testing.T, id string) {
			r.start(r.s, id)
			r.move(r.other, id, 0, "s1")
			in := r.result(id, 1, "s2")
			r.s.apply(r.ctx, []job{in})
			p := r.settled(r.s)
			require.Same(t, in.msg, p.msg)
			require.Len(t, p.futures, 1)
			require.Equal(t, 1, r.kv.count("leader"))
			require.Zero(t, r.kv.count("get"))
			require.Equal(t, 1, r.kv.count("update"), "no conflict: the leader had the latest")
			rec, _ := r.record(id)
			require.Equal(t, "s2", rec.State)
		}},
		{"conflicts past the bound: the input is handed back", func(t *testing.T, id string) {
			r.start(r.s, id)
			errs := make([]error, maxCASRetries+1)
			for i := range errs {
				errs[i] = conflict
			}
			r.kv.fail("update", errs...)
			in := r.result(id, 0, "s1")
			r.s.apply(r.ctx, []job{in})
			require.Equal(t, []string{"nak"}, in.msg.(*inputMsg).how())
			r.noneSettled(r.s)
			require.Equal(t, maxCASRetries+1, r.kv.count("update"))
			require.Equal(t, maxCASRetries, r.kv.count("get"))
			rec, _ := r.record(id)
			require.Equal(t, "s0", rec.State, "nothing written")
		}},
		{"a write timeout hands the inputs back", func(t *testing.T, id string) {
			r.start(r.s, id)
			r.kv.fail("update", context.DeadlineExceeded)
			a, b := r.result(id, 0, "s1"), r.result(id, 1, "s2")
			r.s.apply(r.ctx, []job{a, b})
			require.Equal(t, []string{"nak"}, a.msg.(*inputMsg).how())
			require.Equal(t, []string{"nak"}, b.msg.(*inputMsg).how())
			r.noneSettled(r.s)
			rec, _ := r.record(id)
			require.Equal(t, "s0", rec.State)
			// Redelivered, they apply.
			r.s.apply(r.ctx, []job{r.result(id, 0, "s1"), r.result(id, 1, "s2")})
			require.Len(t, settledBy(r.settled(r.s)), 2)
			rec, _ = r.record(id)
			require.Equal(t, "s2", rec.State)
		}},
		{"a write timeout on the last delivery dead-letters the input with the reason", func(t *testing.T, id string) {
			r.start(r.s, id)
			r.kv.fail("update", context.DeadlineExceeded)
			in := r.result(id, 0, "s1")
			in.delivered = uint64(r.c.cfg.MaxDeliveries)
			r.s.apply(r.ctx, []job{in})
			p := r.settled(r.s)
			require.Same(t, in.msg, p.msg)
			require.Contains(t, p.term, "given up after")
			require.Contains(t, p.term, "deadline exceeded")
			require.Empty(t, in.msg.(*inputMsg).how(), "settled through the ack loop, not naked")
		}},
		{"a read timeout hands the input back", func(t *testing.T, id string) {
			r.start(r.other, id) // not in this shard's cache
			r.kv.fail("get", context.DeadlineExceeded)
			in := r.result(id, 0, "s1")
			r.s.apply(r.ctx, []job{in})
			require.Equal(t, []string{"nak"}, in.msg.(*inputMsg).how())
			r.noneSettled(r.s)
			require.Zero(t, r.kv.count("update"))
		}},
		{"a refresh that times out hands the group back", func(t *testing.T, id string) {
			r.start(r.s, id)
			r.move(r.s, id, 0, "s1")
			r.kv.fail("get", context.DeadlineExceeded)
			dup := r.result(id, 0, "s1")
			r.s.apply(r.ctx, []job{dup})
			require.Equal(t, []string{"nak"}, dup.msg.(*inputMsg).how())
			r.noneSettled(r.s)
		}},
		{"not found: results and cancels are refused, timers acknowledged, after one read", func(t *testing.T, id string) {
			r.start(r.other, id)
			r.kv.fail("get", fmt.Errorf("confirmed by the leader: %w", jetstream.ErrKeyNotFound))
			res := r.result(id, 0, "s1")
			tm := job{runID: id, msg: &inputMsg{subject: "timer"}, timer: &protocol.TimerFire{RunID: id, Kind: protocol.TimerJoin}}
			cn := job{runID: id, msg: &inputMsg{subject: "control"}, cancel: &protocol.CancelRequest{RunID: id}}
			r.s.apply(r.ctx, []job{res, tm, cn})
			got := map[jetstream.Msg]pendingAck{}
			for range 3 {
				p := r.settled(r.s)
				got[p.msg] = p
			}
			require.Contains(t, got[res.msg].term, "result for unknown run")
			require.Empty(t, got[tm.msg].term, "acknowledged")
			require.Contains(t, got[cn.msg].term, "cancel for unknown run")
			require.Equal(t, 1, r.kv.count("get"))
		}},
		{"a trigger whose run exists answers with it", func(t *testing.T, id string) {
			r.start(r.other, id)
			r.kv.fail("create", jetstream.ErrKeyExists)
			tr := job{runID: id, msg: &inputMsg{subject: "trigger"}, trig: &protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.ChainName}}
			r.s.trigger(r.ctx, tr)
			p := r.settled(r.s)
			require.Same(t, tr.msg, p.msg)
			require.Empty(t, p.term)
			require.Len(t, p.futures, 1, "the running run's command is re-published (redrives)")
			require.Equal(t, 1, r.kv.count("get"))
		}},
		{"a trigger whose create times out is handed back", func(t *testing.T, id string) {
			r.kv.fail("create", context.DeadlineExceeded)
			tr := job{runID: id, msg: &inputMsg{subject: "trigger"}, trig: &protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.ChainName}}
			r.s.trigger(r.ctx, tr)
			require.Equal(t, []string{"nak"}, tr.msg.(*inputMsg).how())
			r.noneSettled(r.s)
		}},
		{"one run's inputs in a batch are one write; another run's are another", func(t *testing.T, id string) {
			id2 := id + "b"
			r.start(r.s, id)
			r.start(r.s, id2)
			a, b, c := r.result(id, 0, "s1"), r.result(id2, 0, "s1"), r.result(id, 1, "s2")
			require.False(t, r.s.handleBatch(r.ctx, []job{a, b, c}))
			first := r.settled(r.s)
			require.Equal(t, []jetstream.Msg{a.msg, c.msg}, settledBy(first), "settled together")
			require.Len(t, first.futures, 2, "both commands")
			require.Equal(t, []jetstream.Msg{b.msg}, settledBy(r.settled(r.s)))
			require.Equal(t, 2, r.kv.count("update"), "one write per run")
			rec, _ := r.record(id)
			require.Equal(t, "s2", rec.State)
		}},
	} {
		n++
		id := fmt.Sprintf("faultrun%d", n)
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			r.kv.mu.Lock()
			r.kv.calls = map[string]int{}
			r.kv.mu.Unlock()
			tc.run(t, id)
			r.kv.mu.Lock()
			defer r.kv.mu.Unlock()
			for op, q := range r.kv.errs {
				require.Empty(t, q, "injected %s faults all used", op)
			}
			for op, q := range r.kv.before {
				require.Empty(t, q, "interference before %s ran", op)
			}
		})
	}
}
