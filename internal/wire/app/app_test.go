package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/app"
	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/protocol"
)

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer func() { _ = l.Close() }()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

func urlOf(port int) string { return fmt.Sprintf("nats://127.0.0.1:%d", port) }

// procs are a coordinator and a worker started through internal/app, as
// cmd/coordinator and cmd/worker start them.
type procs struct {
	logs   *natstest.LogBuffer
	ready  chan struct{}
	cancel context.CancelFunc
	done   chan error // one value per process when it returns
	once   sync.Once
}

// stop stops both processes (while the server is still up) and requires
// that they return without error.
func (p *procs) stop(t *testing.T) {
	t.Helper()
	p.once.Do(func() {
		p.cancel()
		for range 2 {
			select {
			case err := <-p.done:
				require.NoError(t, err)
			case <-time.After(60 * time.Second):
				t.Error("a process did not stop within 60s")
				return
			}
		}
	})
}

func startProcs(t *testing.T, url string, replicas int) *procs {
	t.Helper()
	p := &procs{logs: &natstest.LogBuffer{}, ready: make(chan struct{}), done: make(chan error, 2)}
	log := slog.New(slog.NewTextHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	var once sync.Once
	go func() {
		p.done <- app.RunCoordinator(ctx, log.With("proc", "coordinator"), app.CoordinatorConfig{
			NATS: cli.NATSConfig{URL: url}, Replicas: replicas, Shards: 4, DrainTimeout: time.Second, EventCapture: true,
			Ready: func(string) { once.Do(func() { close(p.ready) }) },
		}, 20*time.Second)
	}()
	go func() {
		p.done <- app.RunWorker(ctx, log.With("proc", "worker"), app.WorkerConfig{NATS: cli.NATSConfig{URL: url}},
			20*time.Second)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *procs) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case err := <-p.done:
		t.Fatalf("a process exited before the coordinator was ready: %v\n%s", err, p.logs.String())
	case <-time.After(120 * time.Second):
		t.Fatalf("coordinator not ready within 120s of the server starting\n%s", p.logs.String())
	}
}

// requireRunning fails if a process has returned.
func (p *procs) requireRunning(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		t.Fatalf("a process exited: %v\n%s", err, p.logs.String())
	default:
	}
}

func (p *procs) waitLog(t *testing.T, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(p.logs.String(), s) },
		60*time.Second, 10*time.Millisecond, "no log line %q", s)
}

func runOne(t *testing.T, url string) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	require.NoError(t, err)
	defer nc.Close()
	cl, err := client.New(nc, client.Config{Timeout: 30 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The worker registers the demo workflows once it is up: a trigger
	// before that is refused as an unknown workflow.
	require.Eventually(t, func() bool {
		_, err := cl.Workflow(ctx, demo.OneTaskName, "")
		return err == nil
	}, 60*time.Second, 50*time.Millisecond, "the worker never registered %s", demo.OneTaskName)
	// A cluster may still be settling: a trigger may need a retry.
	var id string
	require.Eventually(t, func() bool {
		id, err = cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{NoWait: true})
		return err == nil
	}, 60*time.Second, 100*time.Millisecond)
	out, err := cl.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
}

// TestProcessesWaitForServer starts a coordinator and a worker before any
// server listens on their URL, then starts one there: both come up and a
// run completes.
func TestProcessesWaitForServer(t *testing.T) {
	t.Parallel()
	port := freePorts(t, 1)[0]
	p := startProcs(t, urlOf(port), 0)
	p.waitLog(t, "waiting for NATS at "+urlOf(port)+": connection refused; retrying in")
	srv, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Port: port})
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	p.waitReady(t)
	runOne(t, urlOf(port))
	p.requireRunning(t)
	p.stop(t)
}

// TestProcessesWaitForCluster starts them before a three-node cluster whose
// nodes then start one by one: they wait through the leader elections
// (R3 streams) and a run completes.
func TestProcessesWaitForCluster(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 6)
	client, route := ports[:3], ports[3:]
	urls := []string{urlOf(client[0]), urlOf(client[1]), urlOf(client[2])}
	p := startProcs(t, strings.Join(urls, ","), 3)
	p.waitLog(t, "waiting for NATS at")
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", route[j]))
			}
		}
		srv, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Port: client[i],
			ServerName: fmt.Sprintf("n%d", i),
			Cluster:    &embedded.ClusterConfig{Name: "cano-wait", Port: route[i], Routes: routes}})
		require.NoError(t, err)
		t.Cleanup(srv.Stop)
	}
	p.waitReady(t)
	runOne(t, urls[0])
	p.requireRunning(t)
	p.stop(t)
}

// TestServerRestart stops the server under running processes and starts it
// again on the same store and port: the processes keep running, the
// in-memory events capture stream (-event-capture) the restart lost is
// re-created, and the events of a new run are delivered to client.Events.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	port := freePorts(t, 1)[0]
	dir := t.TempDir()
	srv, err := embedded.Start(embedded.Config{StoreDir: dir, Port: port})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop() })
	p := startProcs(t, urlOf(port), 0)
	p.waitReady(t)
	runOne(t, urlOf(port))

	srv.Stop()
	p.waitLog(t, "lost the connection to NATS at "+urlOf(port))
	srv, err = embedded.Start(embedded.Config{StoreDir: dir, Port: port})
	require.NoError(t, err)

	nc, err := nats.Connect(urlOf(port))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		_, err := js.Stream(ctx, layout.EventsStream(protocol.MustNames("")))
		return err == nil
	}, 90*time.Second, 50*time.Millisecond, "events stream not re-created\n%s", p.logs.String())
	p.requireRunning(t)

	cl, err := client.New(nc, client.Config{Timeout: 30 * time.Second})
	require.NoError(t, err)
	st, err := cl.Events(ctx, &client.EventFilter{Workflow: demo.OneTaskName})
	require.NoError(t, err)
	defer st.Stop()
	id, err := cl.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{NoWait: true})
	require.NoError(t, err)
	for {
		ev, err := st.Next(ctx)
		require.NoError(t, err)
		if ev.RunID == id && ev.Type == client.EventCompleted {
			break
		}
	}
	p.requireRunning(t)
	p.stop(t)
}

// TestDevListenInUse runs a dev coordinator on an address something else
// listens on: it fails at once, naming the address and -listen.
func TestDevListenInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs := &natstest.LogBuffer{}
	err = app.RunCoordinator(ctx, slog.New(slog.NewTextHandler(logs, nil)), app.CoordinatorConfig{Dev: true,
		DataDir: t.TempDir(), Listen: l.Addr().String(), HTTP: "off", MetricsAddr: "off"}, 10*time.Second)
	require.EqualError(t, err, l.Addr().String()+" is in use (another coordinator -dev?): stop it or choose another address with -listen HOST:PORT")
	require.NoError(t, ctx.Err(), "failed before its deadline")
}

// TestHTTPOffLoopbackNeedsCredentials: a dashboard address other than
// loopback without credentials is refused, naming the coordinator's flags.
func TestHTTPOffLoopbackNeedsCredentials(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs := &natstest.LogBuffer{}
	err := app.RunCoordinator(ctx, slog.New(slog.NewTextHandler(logs, nil)), app.CoordinatorConfig{Dev: true,
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", HTTP: "0.0.0.0:0", MetricsAddr: "off"}, 10*time.Second)
	require.ErrorContains(t, err, "-http 0.0.0.0:0 is not loopback: serving there needs -http-token (or CANO_HTTP_TOKEN), or -http-user and -http-password")
}

// TestRunRetention: the coordinator's run retention (-run-retention) is
// the one its runs' records get: a finished run's record is gone once it
// passes.
func TestRunRetention(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, done := make(chan string, 1), make(chan error, 1)
	logs := &natstest.LogBuffer{}
	listen, dir := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0]), t.TempDir()
	go func() {
		done <- app.RunCoordinator(ctx, slog.New(slog.NewTextHandler(logs, nil)), app.CoordinatorConfig{Dev: true,
			DataDir: dir, Listen: listen, HTTP: "off", MetricsAddr: "off", DemoEvery: 0,
			RunRetention: 2 * time.Second, Ready: func(url string) { ready <- url }}, 10*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Error("the coordinator did not stop within 60s")
		}
	})
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatalf("the coordinator exited: %v\n%s", err, logs.String())
	case <-time.After(120 * time.Second):
		t.Fatalf("the coordinator was not ready within 120s\n%s", logs.String())
	}
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	run, err := cl.Run(rctx, demo.WorkflowName, nil)
	require.NoError(t, err)
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := cl.Get(rctx, run.ID)
		if errors.Is(err, client.ErrNotFound) {
			return
		}
		require.NoError(t, err)
		require.True(t, time.Now().Before(deadline), "run %s still readable 60s after it ended with a 2s run retention", run.ID)
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWorkerKeepsCoordinatorSettings: a worker started after a coordinator
// with a non-default setting (-leader-ttl) leaves it as the coordinator set
// it; before, its provisioning applied the defaults again, and the lease
// the scheduler renews every TTL/3 of its own 30 s expired after 10 s.
func TestWorkerKeepsCoordinatorSettings(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &natstest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ready, done := make(chan struct{}), make(chan error, 2)
	var once sync.Once
	go func() {
		done <- app.RunCoordinator(ctx, log.With("proc", "coordinator"), app.CoordinatorConfig{
			NATS: cli.NATSConfig{URL: srv.URL}, Shards: 4, DrainTimeout: time.Second, LeaderTTL: 30 * time.Second,
			Ready: func(string) { once.Do(func() { close(ready) }) },
		}, 20*time.Second)
	}()
	procs := 1
	t.Cleanup(func() {
		cancel()
		for range procs {
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(60 * time.Second):
				t.Error("a process did not stop within 60s")
				return
			}
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("the coordinator exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the coordinator was not ready within 60s\n%s", logs.String())
	}
	nc, js := srv.Connect(t)
	leaderTTL := func() time.Duration {
		kv, err := js.KeyValue(ctx, layout.LeaderBucket(protocol.MustNames("")))
		require.NoError(t, err)
		st, err := kv.Status(ctx)
		require.NoError(t, err)
		return st.TTL()
	}
	require.Equal(t, 30*time.Second, leaderTTL())

	procs++
	go func() {
		done <- app.RunWorker(ctx, log.With("proc", "worker"), app.WorkerConfig{NATS: cli.NATSConfig{URL: srv.URL}}, 20*time.Second)
	}()
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { // the worker has provisioned, then registered
		_, err := cl.Workflow(ctx, demo.OneTaskName, "")
		return err == nil
	}, 60*time.Second, 20*time.Millisecond, "the worker never registered %s\n%s", demo.OneTaskName, logs.String())
	require.Equal(t, 30*time.Second, leaderTTL(), "the worker's provisioning changed the coordinator's -leader-ttl")
}
