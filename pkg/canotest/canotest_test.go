package canotest_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

type step string

const (
	greet  step = "greet"
	shout  step = "shout"
	done   step = "done"
	failed step = "failed"
)

// greetTask reads a name and hands a greeting on; an empty name fails.
type greetTask struct{}

func (greetTask) Kind() string { return "canotest_greet" }
func (greetTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var name string
	if err := tc.Input(&name); err != nil {
		return fsm.Result{}, err
	}
	if name == "" {
		return fsm.Result{}, fsm.Permanent(errors.New("greet whom? the input is an empty name"))
	}
	return fsm.NextWith(shout, "hello, "+name), nil
}

// shoutTask upper-cases the previous state's greeting.
type shoutTask struct{}

func (shoutTask) Kind() string { return "canotest_shout" }
func (shoutTask) Run(_ context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var g string
	if err := tc.Previous(&g); err != nil {
		return fsm.Result{}, err
	}
	return fsm.NextWith(done, strings.ToUpper(g)+"!"), nil
}

func registry() *fsm.Registry {
	reg := &fsm.Registry{}
	fsm.Register[greetTask](reg)
	fsm.Register[shoutTask](reg)
	return reg
}

func greeting(name string) *fsm.Workflow[step] {
	return fsm.New[step](name, greet).
		Register(greet, greetTask{}, fsm.TaskConfig{Retry: fsm.RetryNone()}).
		Register(shout, shoutTask{}).
		Exit(done).Exit(failed)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestStart: a test gets a working deployment, runs a workflow through
// it, and the deployment is gone (its server stopped) once the test ends.
func TestStart(t *testing.T) {
	t.Parallel()
	var url string
	t.Run("runs a workflow", func(t *testing.T) {
		env := canotest.Start(t, canotest.Options{Registry: registry(), Workflows: []worker.Definer{greeting("greeting")}})
		require.NotNil(t, env.Client)
		require.NotNil(t, env.Coordinator)
		require.NotNil(t, env.Worker)
		require.Nil(t, env.Flows, "no scheduler unless asked for")
		url = env.URL

		run, err := env.Client.Run(ctx(t), "greeting", &client.TriggerOpts{Input: "ada"})
		require.NoError(t, err)
		require.Equal(t, client.RunCompleted, run.Status, "run error: %v", run.Err)
		require.Equal(t, []string{"greet", "shout", "done"}, run.Path)
		var out string
		require.NoError(t, run.Output(&out))
		require.Equal(t, "HELLO, ADA!", out)
	})
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err == nil {
		nc.Close()
	}
	require.Error(t, err, "the embedded server at %s still accepts connections after its test ended", url)
}

// TestStartScheduler: Options.Scheduler starts a scheduler whose flows
// trigger runs.
func TestStartScheduler(t *testing.T) {
	t.Parallel()
	env := canotest.Start(t, canotest.Options{Registry: registry(), Workflows: []worker.Definer{greeting("greeting")}, Scheduler: true})
	require.NotNil(t, env.Flows)
	require.NotNil(t, env.Scheduler)
}

// recordingTB is a testing.TB whose output is kept.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	lines  []string
	logged chan struct{} // signalled after each write
}

func (r *recordingTB) Output() io.Writer { return r }

func (r *recordingTB) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.lines = append(r.lines, string(p))
	r.mu.Unlock()
	select {
	case r.logged <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (r *recordingTB) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// TestStartLogsToTheTest: without a Logger, the engine's warnings (here:
// a run that failed, and why) reach the test's log.
func TestStartLogsToTheTest(t *testing.T) {
	t.Parallel()
	rec := &recordingTB{TB: t, logged: make(chan struct{}, 1)}
	env := canotest.Start(rec, canotest.Options{Registry: registry(), Workflows: []worker.Definer{greeting("greeting")}})
	run, err := env.Client.Run(ctx(t), "greeting", &client.TriggerOpts{Input: ""})
	require.ErrorIs(t, err, fsm.ErrPermanent)
	require.Equal(t, client.RunFailed, run.Status)
	timeout := time.After(10 * time.Second)
	for !rec.has("greet whom?") {
		select {
		case <-rec.logged:
		case <-timeout:
			rec.mu.Lock()
			defer rec.mu.Unlock()
			t.Fatalf("the failed run's warning did not reach the test log; logged: %q", rec.lines)
		}
	}
}

// TestNew: New and Close, for TestMain; Close stops the server and may be
// called again.
func TestNew(t *testing.T) {
	t.Parallel()
	env, err := canotest.New(ctx(t), canotest.Options{Registry: registry(), Workflows: []worker.Definer{greeting("greeting")}})
	require.NoError(t, err)
	run, err := env.Client.Run(ctx(t), "greeting", &client.TriggerOpts{Input: "grace"})
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, run.Status, "run error: %v", run.Err)
	env.Close()
	env.Close()
	_, err = nats.Connect(env.URL, nats.NoReconnect())
	require.Error(t, err, "the embedded server still runs after Close")
}

// TestSharedServer: two Envs on one server (Options.URL) share its
// streams and buckets: the second's client sees the first's run.
func TestSharedServer(t *testing.T) {
	t.Parallel()
	first := canotest.Start(t, canotest.Options{Registry: registry(), Workflows: []worker.Definer{greeting("greeting")}})
	second := canotest.Start(t, canotest.Options{URL: first.URL, NoWorker: true})
	require.Nil(t, second.Worker)
	id, err := second.Client.Trigger(ctx(t), "greeting", &client.TriggerOpts{Input: "linus"})
	require.NoError(t, err)
	run, err := first.Client.Await(ctx(t), id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, run.Status, "run error: %v", run.Err)
}

// TestRegistryRequired: a missing registry is refused with what to do.
func TestRegistryRequired(t *testing.T) {
	t.Parallel()
	_, err := canotest.New(ctx(t), canotest.Options{})
	require.ErrorContains(t, err, "Options.Registry is required")
	require.ErrorContains(t, err, "fsm.Register")
}

// TestStartError: a deployment that cannot start says what, once.
func TestStartError(t *testing.T) {
	t.Parallel()
	_, err := canotest.New(ctx(t), canotest.Options{Registry: &fsm.Registry{}, Workflows: []worker.Definer{greeting("greeting")}})
	require.ErrorIs(t, err, fsm.ErrConfiguration)
	require.ErrorContains(t, err, `canotest: start: worker: fsm: configuration: workflow "greeting" uses task kind "canotest_greet", which this worker has not registered`)
}
