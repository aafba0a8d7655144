package fault

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
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
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// The bad-input suite runs the coordinator and the worker in the test
// process (so it can host its own workflows: an endless cycle, a million-
// branch split) on a real embedded JetStream server. "Keeps running" is
// checked by running a normal workflow after every case, and by 200
// bystander runs started before the first case and awaited after the last.

const (
	loopName  = "bad_loop"
	hugeName  = "bad_huge_split"
	bigName   = "bad_big_output"
	floodName = "bad_flood"
	loopCap   = 50
)

// pingPong moves to Next at once, forever if the states say so.
type pingPong struct {
	Next string `msgpack:"next"`
}

func (pingPong) Kind() string { return "ping_pong" }
func (p pingPong) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(p.Next), nil
}

// hugeSplit returns a dynamic split of N no-op branches.
type hugeSplit struct {
	N int `msgpack:"n"`
}

func (hugeSplit) Kind() string { return "huge_split" }
func (h hugeSplit) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	tasks := make([]fsm.Task, h.N)
	for i := range tasks {
		tasks[i] = demo.Noop{Next: "done"}
	}
	return fsm.SplitInto(fsm.JoinConfig[string]{JoinState: "done"}, tasks...), nil
}

// bigOutput completes with an output of Bytes bytes.
type bigOutput struct {
	Bytes int `msgpack:"bytes"`
}

func (bigOutput) Kind() string { return "big_output" }
func (o bigOutput) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.NextWith("done", make([]byte, o.Bytes)), nil
}

// ghostKind is a task kind no worker registers.
type ghostKind struct{}

func (ghostKind) Kind() string { return "ghost_kind" }
func (ghostKind) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next("done"), nil
}

type badBundle struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	client *client.Client
	names  protocol.Names
	dlq    *letters
}

// letters collects dead letters as they are published (core subscription
// on the DLQ subjects, set up before any case runs).
type letters struct {
	mu   sync.Mutex
	got  []protocol.DeadLetter // guarded by mu
	from int                   // guarded by mu; await looks at got[from:]
	seen chan struct{}
}

func (l *letters) add(m *nats.Msg) {
	var dl protocol.DeadLetter
	if err := wirecodec.Decode(m.Data, &dl, 16<<20); err != nil {
		return
	}
	l.mu.Lock()
	l.got = append(l.got, dl)
	l.mu.Unlock()
	select {
	case l.seen <- struct{}{}:
	default:
	}
}

// reset makes await ignore the letters collected so far (one case's
// letters are not mistaken for the next one's).
func (l *letters) reset() {
	l.mu.Lock()
	l.from = len(l.got)
	l.mu.Unlock()
}

func (l *letters) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.got)
}

// await waits for a dead letter from source matching pred and returns it.
func (l *letters) await(t *testing.T, source string, pred func(*protocol.DeadLetter) bool) protocol.DeadLetter {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		for i := l.from; i < len(l.got); i++ {
			if dl := l.got[i]; dl.Source == source && pred(&dl) {
				l.mu.Unlock()
				return dl
			}
		}
		l.mu.Unlock()
		select {
		case <-l.seen:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, dl := range l.got {
				t.Logf("dead letter: source=%s subject=%s category=%s reason=%s", dl.Source, dl.Subject, dl.Category, dl.Reason)
			}
			t.Fatalf("no dead letter from %s matching within 20s", source)
		}
	}
}

func subjectIs(subj string) func(*protocol.DeadLetter) bool {
	return func(dl *protocol.DeadLetter) bool { return dl.Subject == subj }
}

func setupBadInput(t *testing.T) *badBundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{EventCapture: true})
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := &badBundle{nc: nc, js: js, names: protocol.MustNames(""), dlq: &letters{seen: make(chan struct{}, 1)}}
	_, err := nc.Subscribe(b.names.DLQWildcard(), b.dlq.add)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	fsm.Register[pingPong](reg)
	fsm.Register[hugeSplit](reg)
	fsm.Register[bigOutput](reg)
	wfs := []worker.Definer{
		demo.OneTask(), demo.Chain(),
		fsm.New[string](loopName, "ping").Register("ping", pingPong{Next: "pong"}, fsm.Minimal()).
			Register("pong", pingPong{Next: "ping"}, fsm.Minimal()).Exit("never").MaxTransitions(loopCap),
		fsm.New[string](hugeName, "split").Register("split", hugeSplit{N: 1_000_000}, fsm.Minimal()).Exit("done"),
		fsm.New[string](bigName, "big").Register("big", bigOutput{Bytes: 2 << 20}, fsm.Minimal()).Exit("done"),
		fsm.New[string](floodName, "work").Register("work", demo.Noop{Next: "done"}, fsm.Minimal()).Exit("done"),
	}
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: wfs, AckWait: 5 * time.Second, Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{Shards: 8, AckWait: 5 * time.Second, Logger: quiet, MaxPayload: protocol.MaxPayloadDefault})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	b.client, err = client.New(nc, client.Config{})
	require.NoError(t, err)
	return b
}

func (b *badBundle) publish(t *testing.T, subj string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := b.js.Publish(ctx, subj, data)
	require.NoError(t, err)
}

// stillWorks runs a normal workflow to completion: the coordinator and the
// worker kept running through the case before it.
func (b *badBundle) stillWorks(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := b.client.Run(ctx, demo.OneTaskName, nil)
	require.NoError(t, err, "a normal run after the bad input")
	require.Equal(t, []string{"work", "done"}, out.Path)
}

func encode(t *testing.T, m protocol.Message) []byte {
	t.Helper()
	data, err := wirecodec.Encode(m)
	require.NoError(t, err)
	return data
}

func TestBadInput(t *testing.T) {
	b := setupBadInput(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	b.stillWorks(t)
	bystanders := make([]string, 200)
	for i := range bystanders {
		id, err := b.client.Trigger(ctx, demo.ChainName, &client.TriggerOpts{NoWait: true})
		require.NoError(t, err)
		bystanders[i] = id
	}
	t.Logf("started %d bystander runs of %s before the bad input", len(bystanders), demo.ChainName)

	t.Run("garbage bytes on every input subject", func(t *testing.T) {
		b.dlq.reset()
		garbage := []byte("\xc1\xff garbage \x00\x01")
		cases := []struct{ subj, source string }{
			{b.names.TriggerSubject(demo.OneTaskName), "trigger"},
			{b.names.ResultSubject("rgarbage"), "result"},
			{b.names.CancelSubject("rgarbage"), "control"},
			{b.names.TimerFireSubject("rgarbage", "t"), "timer"},
			{b.names.TaskSubject(fsm.QueueDefault, "noop"), "task"},
		}
		for _, tc := range cases {
			b.publish(t, tc.subj, garbage)
		}
		for _, tc := range cases {
			dl := b.dlq.await(t, tc.source, subjectIs(tc.subj))
			require.Equal(t, "malformed", dl.Category, "reason: %s", dl.Reason)
			require.Contains(t, dl.Reason, protocol.ErrMalformed.Error())
			require.Equal(t, garbage, dl.Data, "the dead letter keeps the original bytes")
		}
		b.stillWorks(t)
		t.Logf("garbage on %d subjects (trigger, result, control, timer, task): %d dead letters, category malformed; a normal run completed", len(cases), len(cases))
	})

	t.Run("truncated msgpack", func(t *testing.T) {
		b.dlq.reset()
		trig := encode(t, &protocol.Trigger{V: protocol.SchemaVersion, Workflow: demo.OneTaskName, RunID: "rtruncated"})
		cmd := encode(t, &protocol.TaskCommand{V: protocol.SchemaVersion, RunID: "rtruncated", Workflow: demo.OneTaskName,
			State: "work", Step: 1, Branch: -1, Task: protocol.TaskSpec{Kind: "noop", Params: []byte{0x80}}})
		res := encode(t, &protocol.TaskResult{V: protocol.SchemaVersion, RunID: "rtruncated", Step: 1, Branch: -1,
			Status: protocol.ResultOK, Next: "done", Attempts: 1, Worker: "w"})
		taskSubj := b.names.TaskSubject(fsm.QueueDefault, "noop")
		b.publish(t, b.names.TriggerSubject(demo.OneTaskName), trig[:len(trig)/2])
		b.publish(t, taskSubj, cmd[:len(cmd)-3])
		b.publish(t, b.names.ResultSubject("rtruncated"), res[:len(res)-1])
		for _, c := range []struct {
			source, subj string
		}{{"trigger", b.names.TriggerSubject(demo.OneTaskName)}, {"task", taskSubj}, {"result", b.names.ResultSubject("rtruncated")}} {
			dl := b.dlq.await(t, c.source, subjectIs(c.subj))
			require.Equal(t, "malformed", dl.Category, "reason: %s", dl.Reason)
		}
		_, err := b.client.Get(ctx, "rtruncated")
		require.ErrorIs(t, err, client.ErrNotFound, "a truncated trigger starts nothing")
		b.stillWorks(t)
		t.Logf("truncated trigger, task command and result: 3 dead letters, category malformed; no run started; a normal run completed")
	})

	t.Run("wrong schema version", func(t *testing.T) {
		b.dlq.reset()
		// Triggers may be SchemaVersion4 (a run that starts later) and task
		// commands SchemaVersion2 forms: the first unknown versions are 5 and 3.
		trig := encode(t, &protocol.Trigger{V: protocol.SchemaVersion4 + 1, Workflow: demo.OneTaskName, RunID: "rschema"})
		cmd := encode(t, &protocol.TaskCommand{V: protocol.SchemaVersion2 + 1, RunID: "rschema", Workflow: demo.OneTaskName,
			State: "work", Step: 1, Branch: -1, Task: protocol.TaskSpec{Kind: "noop"}})
		b.publish(t, b.names.TriggerSubject(demo.OneTaskName), trig)
		b.publish(t, b.names.TaskSubject(fsm.QueueDefault, "noop"), cmd)
		for source, want := range map[string]string{
			"trigger": fmt.Sprintf("%d (this build knows %d to %d)", protocol.SchemaVersion4+1, protocol.SchemaVersion, protocol.SchemaVersion4),
			"task":    fmt.Sprintf("%d (this build knows %d to %d)", protocol.SchemaVersion2+1, protocol.SchemaVersion, protocol.SchemaVersion2),
		} {
			dl := b.dlq.await(t, source, func(dl *protocol.DeadLetter) bool { return dl.Category == "schema_version" })
			require.Contains(t, dl.Reason, want)
		}
		_, err := b.client.Get(ctx, "rschema")
		require.ErrorIs(t, err, client.ErrNotFound)
		b.stillWorks(t)
		t.Logf("unknown schema versions on a trigger (%d) and a task command (%d): 2 dead letters, category schema_version; a normal run completed",
			protocol.SchemaVersion4+1, protocol.SchemaVersion2+1)
	})

	t.Run("oversized payload", func(t *testing.T) {
		b.dlq.reset()
		// Over the coordinator's MaxPayload (set to 1 MiB here), under the
		// stream's MaxMsgSize (4 MiB) and the server's max_payload (8 MiB).
		input := strings.Repeat("x", 2<<20)
		_, err := b.client.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{Input: input, RunID: "roversized"})
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		require.Contains(t, err.Error(), "payload too large")
		dl := b.dlq.await(t, "trigger", func(dl *protocol.DeadLetter) bool { return dl.Category == "too_large" })
		require.Contains(t, dl.Reason, fmt.Sprintf("maximum %d", protocol.MaxPayloadDefault))
		_, gerr := b.client.Get(ctx, "roversized")
		require.ErrorIs(t, gerr, client.ErrNotFound)
		b.stillWorks(t)
		t.Logf("a %d-byte trigger: caller got %q; dead letter category too_large; a normal run completed", len(input), err)
	})

	t.Run("unknown workflow and initial state", func(t *testing.T) {
		b.dlq.reset()
		_, err := b.client.Trigger(ctx, "no_such_workflow", nil)
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		require.Contains(t, err.Error(), `unknown workflow "no_such_workflow"`)
		dl := b.dlq.await(t, "trigger", subjectIs(b.names.TriggerSubject("no_such_workflow")))
		require.Contains(t, dl.Reason, `unknown workflow "no_such_workflow"`)
		require.Equal(t, "rejected", dl.Category)
		require.Contains(t, dl.Reason, "(the sender was told so in its reply)", "a replay would start a run its sender was told had not started")

		_, err = b.client.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{InitialState: "nowhere"})
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		require.Contains(t, err.Error(), `initial state "nowhere"`)
		dl = b.dlq.await(t, "trigger", func(dl *protocol.DeadLetter) bool { return strings.Contains(dl.Reason, `"nowhere"`) })
		require.Equal(t, "rejected", dl.Category)
		b.stillWorks(t)
		t.Logf("unknown workflow / initial state: caller got fsm.ErrConfiguration; 2 dead letters with the name in the reason; a normal run completed")
	})

	t.Run("unknown task kind", func(t *testing.T) {
		b.dlq.reset()
		// A worker cannot register a definition using a kind it does not host.
		reg := &fsm.Registry{}
		demo.RegisterAll(reg)
		_, err := worker.New(b.nc, worker.Config{Registry: reg, Workflows: []worker.Definer{
			fsm.New[string]("bad_ghost", "a").Register("a", ghostKind{}).Exit("done")}})
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		require.Contains(t, err.Error(), `task kind "ghost_kind", which this worker has not registered`)

		// A command on a hosted kind's subject naming a kind nobody hosts:
		// the worker refuses the task (permanent failure, unknown kind);
		// its result, for a run that does not exist, is dead-lettered.
		cmd := encode(t, &protocol.TaskCommand{V: protocol.SchemaVersion, RunID: "rghostkind", Workflow: demo.OneTaskName,
			State: "work", Step: 1, Branch: -1, Task: protocol.TaskSpec{Kind: "ghost_kind", Retry: protocol.RetryPolicy{Mode: protocol.RetryNone}}})
		b.publish(t, b.names.TaskSubject(fsm.QueueDefault, "noop"), cmd)
		dl := b.dlq.await(t, "result", subjectIs(b.names.ResultSubject("rghostkind")))
		require.Contains(t, dl.Reason, `result for unknown run "rghostkind"`)
		var res protocol.TaskResult
		require.NoError(t, wirecodec.Decode(dl.Data, &res, 0))
		require.Equal(t, protocol.ResultFailed, res.Status)
		require.Contains(t, res.Error.Message+fmt.Sprint(res.Error.Cause), `unknown task kind "ghost_kind"`)
		b.stillWorks(t)
		t.Logf("unknown task kind: worker.New refused the definition (%v); a forged command was failed by the worker with the unknown kind, its orphan result dead-lettered; a normal run completed", err)
	})

	t.Run("invalid cron", func(t *testing.T) {
		b.dlq.reset()
		sc, err := scheduler.NewClient(b.js, scheduler.ClientConfig{})
		require.NoError(t, err)
		err = sc.Add(ctx, scheduler.Flow{ID: "bad_cron", Workflow: demo.OneTaskName, Schedule: scheduler.Cron("61 * * * * * *")})
		require.ErrorIs(t, err, scheduler.ErrInvalidFlow)
		_, err2 := sc.Status(ctx, "bad_cron")
		require.ErrorIs(t, err2, scheduler.ErrFlowNotFound, "nothing stored")
		b.stillWorks(t)
		t.Logf("invalid cron: scheduler.Client.Add refused it with %q (scheduler.ErrInvalidFlow), nothing stored; no dead letter as nothing reached the wire", err)
	})

	t.Run("a split of a million branches", func(t *testing.T) {
		b.dlq.reset()
		start := time.Now()
		out, err := b.client.Run(ctx, hugeName, nil)
		require.Error(t, err)
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		require.Contains(t, err.Error(), "1000000 branches exceeds the maximum")
		require.Equal(t, client.RunFailed, out.Status)
		b.stillWorks(t)
		t.Logf("a dynamic split of 1,000,000 branches: run failed in %s with %q; a normal run completed", time.Since(start).Round(time.Millisecond), err)
	})

	t.Run("a task result over the maximum payload", func(t *testing.T) {
		b.dlq.reset()
		out, err := b.client.Run(ctx, bigName, nil)
		require.ErrorIs(t, err, fsm.ErrTaskExecution)
		require.Contains(t, err.Error(), fmt.Sprintf("exceeds the maximum payload of %d bytes", protocol.MaxPayloadDefault))
		require.Equal(t, client.RunFailed, out.Status)
		b.stillWorks(t)
		t.Logf("a task with a 2 MiB output: run failed with %q; a normal run completed", err)
	})

	t.Run("a cycle without end hits the transition cap", func(t *testing.T) {
		b.dlq.reset()
		out, err := b.client.Run(ctx, loopName, nil)
		require.ErrorIs(t, err, fsm.ErrWorkflow)
		require.Contains(t, err.Error(), fmt.Sprintf("transition cap reached: %d state entries", loopCap))
		require.Equal(t, client.RunFailed, out.Status)
		var se *fsm.StateError
		require.ErrorAs(t, err, &se)
		require.Len(t, se.Path, loopCap)
		b.stillWorks(t)
		t.Logf("ping ↔ pong without an exit, MaxTransitions %d: run failed with %q after %d state entries; a normal run completed", loopCap, err, len(se.Path))
	})

	t.Run("a flood of 10,000 triggers with one idempotency key", func(t *testing.T) {
		b.dlq.reset()
		const n, waiters = 10_000, 16
		ids := make([]string, n)
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					id, err := b.client.Trigger(ctx, floodName, &client.TriggerOpts{IdempotencyKey: "flood-1", NoWait: i >= waiters})
					if err != nil {
						errs <- err
						return
					}
					ids[i] = id
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		want := layout.IdempotentRunID(floodName, "flood-1")
		for _, id := range ids {
			require.Equal(t, want, id)
		}
		// Past the broker's de-duplication: the same key under other
		// message ids reaches the coordinator, which starts nothing.
		for i := 0; i < 5; i++ {
			msg := &nats.Msg{Subject: b.names.TriggerSubject(floodName), Header: nats.Header{},
				Data: encode(t, &protocol.Trigger{V: protocol.SchemaVersion, Workflow: floodName, IdempotencyKey: "flood-1"})}
			msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("other-%d", i))
			_, err := b.js.PublishMsg(ctx, msg)
			require.NoError(t, err)
		}
		out, err := b.client.Await(ctx, want)
		require.NoError(t, err)
		require.Equal(t, []string{"work", "done"}, out.Path)
		b.stillWorks(t) // after the raw triggers above: they have been handled
		natstest.WaitFor(t, 20*time.Second, "the raw duplicate triggers handled", func() bool {
			st, err := b.js.Stream(ctx, layout.TriggersStream(b.names))
			return err == nil && st.CachedInfo().State.Msgs == 0
		})
		runs, err := b.client.List(ctx, &client.ListOpts{Workflow: floodName})
		require.NoError(t, err)
		require.Len(t, runs, 1, "exactly one run")
		ev := completedEventsJS(t, b.js, floodName)
		require.Equal(t, map[string]int{want: 1}, ev, "one completed event")
		t.Logf("%d concurrent triggers (%d waiting for an answer) + 5 raw ones with one idempotency key: 1 run (%s), 1 completed event, 0 duplicates", n, waiters, want)
	})

	// Bystanders: every run not involved completed normally.
	for _, id := range bystanders {
		out, err := b.client.Await(ctx, id)
		require.NoError(t, err)
		require.Equal(t, chainPath(), out.Path)
	}
	st, err := b.js.Stream(ctx, layout.DLQStream(b.names))
	require.NoError(t, err)
	require.Equal(t, uint64(b.dlq.count()), st.CachedInfo().State.Msgs, "every dead letter seen is stored")
	t.Logf("bad-input suite: %d bystander runs all completed with the full path; %d dead letters stored in %s", len(bystanders), b.dlq.count(), layout.DLQStream(b.names))
}

// completedEventsJS counts completed events per run of workflow on the
// events stream.
func completedEventsJS(t *testing.T, js jetstream.JetStream, workflow string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := protocol.MustNames("")
	cons, err := js.OrderedConsumer(ctx, layout.EventsStream(n), jetstreamOrdered(n.EventSubject(workflow, "*", protocol.EventCompleted)))
	require.NoError(t, err)
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	counts := map[string]int{}
	for i := 0; i < int(info.NumPending); i++ {
		m, err := cons.Next()
		require.NoError(t, err)
		var ev protocol.Event
		require.NoError(t, wirecodec.Decode(m.Data(), &ev, 0))
		counts[ev.RunID]++
	}
	return counts
}
