package scheduler_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// standInCoordinator is a test-only stand-in for the real coordinator: it
// consumes triggers, creates the run record with KV Create (a duplicate run
// id starts nothing), and ends each run after a delay with the outcome the
// test chooses, updating the record and publishing the terminal event.
type standInCoordinator struct {
	t     *testing.T
	js    jetstream.JetStream
	names protocol.Names
	runs  jetstream.KeyValue

	mu sync.Mutex // guards the fields below
	// outcome picks how a run ends (default: completed) and after how long.
	outcome func(tr *protocol.Trigger) (protocol.EventType, time.Duration)
	started []startedRun // in start order
	dups    int          // triggers whose run id already had a record
	changed chan struct{}
}

type startedRun struct {
	Trigger protocol.Trigger
	At      time.Time
}

func startStandIn(t *testing.T, js jetstream.JetStream) *standInCoordinator {
	t.Helper()
	ctx := context.Background()
	names := protocol.MustNames("")
	runs, err := js.KeyValue(ctx, layout.RunsBucket(names))
	require.NoError(t, err)
	c := &standInCoordinator{t: t, js: js, names: names, runs: runs, changed: make(chan struct{}, 1)}
	cons, err := js.CreateOrUpdateConsumer(ctx, layout.TriggersStream(names), jetstream.ConsumerConfig{
		Durable:   "stand_in_coordinator",
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)
	cc, err := cons.Consume(c.handle)
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
	return c
}

func (c *standInCoordinator) setOutcome(f func(tr *protocol.Trigger) (protocol.EventType, time.Duration)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outcome = f
}

func (c *standInCoordinator) handle(m jetstream.Msg) {
	var tr protocol.Trigger
	if err := wirecodec.Decode(m.Data(), &tr, 0); err != nil {
		_ = m.Term()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now()
	rec := protocol.RunRecord{V: protocol.SchemaVersion, ID: tr.RunID, Workflow: tr.Workflow,
		Status: protocol.RunRunning, State: "start", CreatedAt: now.UnixNano(), UpdatedAt: now.UnixNano(),
		Flow: tr.Flow, Slot: tr.Slot}
	data, _ := wirecodec.Encode(&rec)
	rev, err := c.runs.Create(ctx, layout.RunKey(tr.RunID), data)
	c.mu.Lock()
	if errors.Is(err, jetstream.ErrKeyExists) {
		c.dups++
		c.mu.Unlock()
		_ = m.Ack()
		return
	}
	if err != nil {
		c.mu.Unlock()
		_ = m.Nak()
		return
	}
	outcome := c.outcome
	c.mu.Unlock()
	typ, delay := protocol.EventCompleted, time.Duration(0)
	if outcome != nil {
		typ, delay = outcome(&tr) // sees the runs started before this one
	}
	c.mu.Lock()
	c.started = append(c.started, startedRun{Trigger: tr, At: now})
	c.mu.Unlock()
	c.notify()
	_ = m.Ack()
	time.AfterFunc(delay, func() { c.end(rec, rev, typ) })
}

func (c *standInCoordinator) end(rec protocol.RunRecord, rev uint64, typ protocol.EventType) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev := protocol.Event{V: protocol.SchemaVersion, Type: typ, RunID: rec.ID, Workflow: rec.Workflow, Time: time.Now().UnixNano()}
	switch typ {
	case protocol.EventCompleted:
		rec.Status = protocol.RunCompleted
	case protocol.EventCancelled:
		rec.Status = protocol.RunCancelled
	default:
		rec.Status = protocol.RunFailed
		rec.Error = &protocol.ErrorInfo{Category: "task", Message: "flaky failure"}
		ev.Error = rec.Error
	}
	ev.Status = rec.Status
	data, _ := wirecodec.Encode(&rec)
	_, _ = c.runs.Update(ctx, layout.RunKey(rec.ID), data, rev)
	evData, _ := wirecodec.Encode(&ev)
	_ = c.js.Conn().Publish(c.names.EventSubject(rec.Workflow, rec.ID, typ), evData)
	c.notify()
}

func (c *standInCoordinator) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// runsOf returns the runs started for flow, in start order.
func (c *standInCoordinator) runsOf(flow string) []startedRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []startedRun
	for _, r := range c.started {
		if r.Trigger.Flow == flow {
			out = append(out, r)
		}
	}
	return out
}

func (c *standInCoordinator) duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups
}

// waitRuns waits until flow has at least n runs started.
func (c *standInCoordinator) waitRuns(t *testing.T, flow string, n int, timeout time.Duration) []startedRun {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if rs := c.runsOf(flow); len(rs) >= n {
			return rs
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			t.Fatalf("flow %s: %d runs after %s, want %d", flow, len(c.runsOf(flow)), timeout, n)
		}
	}
}
