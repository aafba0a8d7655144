package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// nextEvents reads n events from st, failing the test if they do not come
// within the context of awaitCtx.
func nextEvents(t *testing.T, st *client.EventStream, n int) []client.Event {
	t.Helper()
	ctx := awaitCtx(t)
	out := make([]client.Event, 0, n)
	for range n {
		ev, err := st.Next(ctx)
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

func events(t *testing.T, cl *client.Client, f *client.EventFilter) *client.EventStream {
	t.Helper()
	st, err := cl.Events(context.Background(), f)
	require.NoError(t, err)
	t.Cleanup(st.Stop)
	return st
}

func typesAndStates(evs []client.Event) (types []client.EventType, states []string) {
	for _, ev := range evs {
		types = append(types, ev.Type)
		states = append(states, ev.State)
	}
	return types, states
}

// A chain run's events: started in a, entered b and c, completed in done.
var (
	chainTypes  = []client.EventType{client.EventStarted, client.EventState, client.EventState, client.EventCompleted}
	chainStates = []string{"a", "b", "c", "done"}
)

func TestEvents(t *testing.T) {
	t.Parallel()
	b := setupB(t)

	t.Run("live events of a run arrive in order", func(t *testing.T) {
		t.Parallel()
		runID := "rev" + nuid.Next()
		st := events(t, b.client, &client.EventFilter{Workflow: "chain", RunID: runID})
		_, err := b.client.Trigger(awaitCtx(t), "chain", &client.TriggerOpts{RunID: runID})
		require.NoError(t, err)

		evs := nextEvents(t, st, 4)
		types, states := typesAndStates(evs)
		require.Equal(t, chainTypes, types)
		require.Equal(t, chainStates, states)
		for _, ev := range evs {
			require.Equal(t, runID, ev.RunID)
			require.Equal(t, "chain", ev.Workflow)
		}
		require.Equal(t, []string{"a", "b", "c", "done"}, evs[3].Path)
		require.Zero(t, st.Skipped())
	})

	t.Run("live only is the default: an ended run's events are not delivered", func(t *testing.T) {
		t.Parallel()
		// An earlier run, watched until its last event is stored.
		done := "rev" + nuid.Next()
		st := events(t, b.client, &client.EventFilter{RunID: done})
		_, err := b.client.Trigger(awaitCtx(t), "chain", &client.TriggerOpts{RunID: done})
		require.NoError(t, err)
		nextEvents(t, st, 4)

		st = events(t, b.client, &client.EventFilter{Workflow: "chain"})
		next, err := b.client.Trigger(awaitCtx(t), "chain", nil)
		require.NoError(t, err)
		for {
			ev := nextEvents(t, st, 1)[0]
			require.NotEqual(t, done, ev.RunID, "an event from before the call")
			if ev.RunID == next && ev.Type == client.EventCompleted {
				return
			}
		}
	})

	t.Run("replay since a time before the run, and from the start", func(t *testing.T) {
		t.Parallel()
		before := time.Now()
		out, err := b.client.Run(awaitCtx(t), "chain", nil)
		require.NoError(t, err)

		for _, f := range []*client.EventFilter{
			{RunID: out.ID, Since: before},
			{RunID: out.ID, FromStart: true},
		} {
			types, states := typesAndStates(nextEvents(t, events(t, b.client, f), 4))
			require.Equal(t, chainTypes, types)
			require.Equal(t, chainStates, states)
		}

		// Since after the run: nothing of it is replayed; the stream
		// then continues live.
		st := events(t, b.client, &client.EventFilter{RunID: out.ID, Since: time.Now().Add(time.Hour)})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err = st.Next(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})

	t.Run("filter by type", func(t *testing.T) {
		t.Parallel()
		runID := "rev" + nuid.Next()
		st := events(t, b.client, &client.EventFilter{RunID: runID,
			Types: []client.EventType{client.EventCompleted, client.EventStarted, client.EventCompleted}})
		_, err := b.client.Run(awaitCtx(t), "chain", &client.TriggerOpts{RunID: runID})
		require.NoError(t, err)
		types, _ := typesAndStates(nextEvents(t, st, 2))
		require.Equal(t, []client.EventType{client.EventStarted, client.EventCompleted}, types)

		// Completed events of the workflow only, replayed from the start.
		st = events(t, b.client, &client.EventFilter{Workflow: "chain", FromStart: true,
			Types: []client.EventType{client.EventCompleted}})
		for {
			ev := nextEvents(t, st, 1)[0]
			require.Equal(t, client.EventCompleted, ev.Type)
			require.Equal(t, "chain", ev.Workflow)
			if ev.RunID == runID {
				return
			}
		}
	})

	t.Run("a garbage message on the events subject is skipped and counted", func(t *testing.T) {
		t.Parallel()
		runID := "rev" + nuid.Next()
		st := events(t, b.client, &client.EventFilter{RunID: runID})
		subj := protocol.MustNames("").EventSubject("chain", runID, protocol.EventState)
		require.NoError(t, b.nc.Publish(subj, []byte("\xc1\xff garbage")))
		require.NoError(t, b.nc.Publish(subj, []byte{}))
		ev := protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventState, RunID: runID, Workflow: "chain", State: "b"}
		data, err := wirecodec.Encode(&ev)
		require.NoError(t, err)
		require.NoError(t, b.nc.Publish(subj, data))

		got := nextEvents(t, st, 1)[0]
		require.Equal(t, client.Event{Type: client.EventState, RunID: runID, Workflow: "chain", State: "b"}, got)
		require.Equal(t, int64(2), st.Skipped())
	})

	t.Run("Next ends with ctx, and after Stop", func(t *testing.T) {
		t.Parallel()
		st, err := b.client.Events(context.Background(), &client.EventFilter{RunID: "rnothing"})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err = st.Next(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		nextErr := make(chan error, 1)
		go func() {
			_, err := st.Next(context.Background())
			nextErr <- err
		}()
		st.Stop()
		require.ErrorIs(t, natstest.Recv(t, nextErr, 10*time.Second), client.ErrStreamStopped)
		st.Stop()
		_, err = st.Next(context.Background())
		require.ErrorIs(t, err, client.ErrStreamStopped)
	})

	t.Run("an invalid filter is refused", func(t *testing.T) {
		t.Parallel()
		for _, f := range []*client.EventFilter{
			{Workflow: "a.b"},
			{RunID: "*"},
			{Types: []client.EventType{">"}},
			{FromStart: true, Since: time.Now()},
		} {
			_, err := b.client.Events(context.Background(), f)
			require.Error(t, err, "%+v", f)
		}
		_, err := b.client.Events(context.Background(), &client.EventFilter{Workflow: "a.b"})
		require.ErrorIs(t, err, protocol.ErrInvalidName)
	})
}

// TestEventsWithoutCapture runs a deployment without the events capture
// stream (the production default): live watches, Await and Run work on
// core NATS events alone; replay says what is missing.
func TestEventsWithoutCapture(t *testing.T) {
	t.Parallel()
	b := setupWith(t, provision.Config{})
	_, err := b.js.Stream(awaitCtx(t), layout.EventsStream(protocol.MustNames("")))
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)

	t.Run("live events of a run arrive in order", func(t *testing.T) {
		t.Parallel()
		runID := "rev" + nuid.Next()
		st := events(t, b.client, &client.EventFilter{RunID: runID})
		_, err := b.client.Trigger(awaitCtx(t), "chain", &client.TriggerOpts{RunID: runID})
		require.NoError(t, err)
		types, states := typesAndStates(nextEvents(t, st, 4))
		require.Equal(t, chainTypes, types)
		require.Equal(t, chainStates, states)
		require.Zero(t, st.Missed())
	})

	t.Run("live events filtered by type", func(t *testing.T) {
		t.Parallel()
		runID := "rev" + nuid.Next()
		st := events(t, b.client, &client.EventFilter{Workflow: "chain",
			Types: []client.EventType{client.EventCompleted, client.EventStarted}})
		_, err := b.client.Run(awaitCtx(t), "chain", &client.TriggerOpts{RunID: runID})
		require.NoError(t, err)
		var types []client.EventType
		for len(types) < 2 {
			if ev := nextEvents(t, st, 1)[0]; ev.RunID == runID {
				types = append(types, ev.Type)
			}
		}
		require.Equal(t, []client.EventType{client.EventStarted, client.EventCompleted}, types)
	})

	t.Run("Run and Await", func(t *testing.T) {
		t.Parallel()
		out, err := b.client.Run(awaitCtx(t), "chain", nil)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, out.Status)
		require.Equal(t, []string{"a", "b", "c", "done"}, out.Path)
	})

	t.Run("Await of a run that ended before the call", func(t *testing.T) {
		t.Parallel()
		id, err := b.client.Trigger(awaitCtx(t), "chain", &client.TriggerOpts{NoWait: true})
		require.NoError(t, err)
		natstest.WaitFor(t, 30*time.Second, "run "+id+" completed", func() bool {
			r, err := b.client.Get(awaitCtx(t), id)
			return err == nil && r.Status == client.RunCompleted
		})
		out, err := b.client.Await(awaitCtx(t), id)
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, out.Status)
		require.NotZero(t, out.CreatedAt, "read from the record")
	})

	t.Run("replay says the capture stream is missing", func(t *testing.T) {
		t.Parallel()
		for _, f := range []*client.EventFilter{{FromStart: true}, {Since: time.Now().Add(-time.Minute)}} {
			_, err := b.client.Events(context.Background(), f)
			require.ErrorIs(t, err, client.ErrNoEventCapture)
			require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
			require.ErrorContains(t, err, "-event-capture")
		}
	})
}

// TestAwaitLostEvent ends a run in its record without any event (as if the
// terminal event were lost): Await's re-reads of the record find the end.
func TestAwaitLostEvent(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	ctx := awaitCtx(t)
	id := "rlost" + nuid.Next()
	rec, put := runningRecord(ctx, t, js, id)

	awaited := make(chan *client.Run, 1)
	go func() {
		r, err := cl.Await(ctx, id)
		if err != nil {
			t.Errorf("await: %v", err)
		}
		awaited <- r
	}()
	// Still running: Await keeps waiting (its first re-read is at
	// AwaitRecheckFirst); then the record ends with no event at all.
	select {
	case <-awaited:
		t.Fatal("Await returned for a running run")
	case <-time.After(2 * client.AwaitRecheckFirst):
	}
	rec.Status, rec.State, rec.Path, rec.Step = protocol.RunCompleted, "done", []string{"a", "done"}, 1
	put()
	r := natstest.Recv(t, awaited, 10*time.Second)
	require.NotNil(t, r)
	require.Equal(t, client.RunCompleted, r.Status)
	require.Equal(t, []string{"a", "done"}, r.Path)
}

// TestAwaitUnknownRun checks that Await of an id no run has ends with
// ErrNotFound once Config.Timeout has passed, and that a run which is found
// is waited for however long it takes.
func TestAwaitUnknownRun(t *testing.T) {
	t.Parallel()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, js := srv.Connect(t)
	const timeout = 500 * time.Millisecond
	cl, err := client.New(nc, client.Config{Timeout: timeout})
	require.NoError(t, err)
	ctx := awaitCtx(t)

	r, err := cl.Await(ctx, "rnosuchrun")
	require.Nil(t, r)
	require.ErrorIs(t, err, client.ErrNotFound)
	require.ErrorContains(t, err, "after 500ms, and no trigger waits in the triggers stream: check the id")

	// A run whose trigger waits in the triggers stream (sent with NoWait,
	// no coordinator running) is not taken for a wrong id.
	queued, err := cl.Trigger(ctx, "chain", &client.TriggerOpts{NoWait: true})
	require.NoError(t, err)
	waiting := make(chan error, 1)
	go func() {
		_, err := cl.Await(ctx, queued)
		waiting <- err
	}()
	select {
	case err := <-waiting:
		t.Fatalf("Await returned while the run's trigger waited: %v", err)
	case <-time.After(3 * timeout):
	}
	rec, put := runningRecord(ctx, t, js, queued)
	rec.Status, rec.State, rec.Path, rec.Step = protocol.RunCompleted, "done", []string{"a", "done"}, 1
	put()
	require.NoError(t, natstest.Recv(t, waiting, 10*time.Second), "its record, once written, ends the wait")

	// A run that exists, still running past Config.Timeout, is awaited to its end.
	id := "rslow" + nuid.Next()
	rec, put = runningRecord(ctx, t, js, id)
	type result struct {
		r   *client.Run
		err error
	}
	awaited := make(chan result, 1)
	go func() {
		r, err := cl.Await(ctx, id)
		awaited <- result{r, err}
	}()
	select {
	case got := <-awaited:
		t.Fatalf("Await returned for a running run: %v, %v", got.r, got.err)
	case <-time.After(3 * timeout):
	}
	rec.Status, rec.State, rec.Path, rec.Step = protocol.RunCompleted, "done", []string{"a", "done"}, 1
	put()
	got := natstest.Recv(t, awaited, 10*time.Second)
	require.NoError(t, got.err)
	require.Equal(t, client.RunCompleted, got.r.Status)
}

// runningRecord writes a running run record id straight into the runs
// bucket, with no engine: put writes *rec again after the test changes it.
func runningRecord(ctx context.Context, t *testing.T, js jetstream.JetStream, id string) (rec *protocol.RunRecord, put func()) {
	t.Helper()
	kv, err := js.KeyValue(ctx, layout.RunsBucket(protocol.MustNames("")))
	require.NoError(t, err)
	rec = &protocol.RunRecord{V: protocol.SchemaVersion, ID: id, Workflow: "chain", DefVersion: "v1",
		Status: protocol.RunRunning, State: "a", Path: []string{"a"}, CreatedAt: time.Now().UnixNano()}
	put = func() {
		data, err := wirecodec.Encode(rec)
		require.NoError(t, err)
		_, err = kv.Put(ctx, layout.RunKey(id), data)
		require.NoError(t, err)
	}
	put()
	return rec, put
}
