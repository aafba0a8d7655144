package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/app"
	"github.com/cano-nats/cano/internal/wire/canoctl"
	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wire/faults"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// rolePasswords are the test's passwords for the users in
// deploy/nats/accounts.conf, by environment variable.
var rolePasswords = map[string]string{
	"CANO_COORDINATOR_PASSWORD":     "coordinator-pw",
	"CANO_WORKER_PASSWORD":          "worker-pw",
	"CANO_CLIENT_PASSWORD":          "client-pw",
	"CANO_DASHBOARD_PASSWORD":       "dashboard-pw",
	"CANO_DASHBOARD_ADMIN_PASSWORD": "dashboard-admin-pw",
}

func password(user string) string {
	return rolePasswords["CANO_"+strings.ToUpper(strings.ReplaceAll(user, "-", "_"))+"_PASSWORD"]
}

// serverLog keeps the server's error lines (permission violations).
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) add(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *serverLog) violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, "Violation") {
			out = append(out, s)
		}
	}
	return out
}

func (l *serverLog) Noticef(string, ...any)    {}
func (l *serverLog) Warnf(f string, v ...any)  { l.add(f, v...) }
func (l *serverLog) Fatalf(f string, v ...any) { l.add(f, v...) }
func (l *serverLog) Errorf(f string, v ...any) { l.add(f, v...) }
func (l *serverLog) Debugf(string, ...any)     {}
func (l *serverLog) Tracef(string, ...any)     {}
func (l *serverLog) String() string            { return strings.Join(l.violations(), "\n") }

// startConfiguredServer loads deploy/nats/nats-server.conf (and the
// accounts it includes) into an in-process server on a free port with its
// store in a temporary directory.
func startConfiguredServer(t *testing.T) (*server.Server, *serverLog) {
	t.Helper()
	for k, v := range rolePasswords {
		t.Setenv(k, v)
	}
	opts, err := server.ProcessConfigFile(filepath.Join("nats", "nats-server.conf"))
	require.NoError(t, err)
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	ns, err := server.NewServer(opts)
	require.NoError(t, err)
	log := &serverLog{}
	ns.SetLoggerV2(log, false, false, false)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second), "server not ready")
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns, log
}

// roleConn is a connection as one user, keeping the asynchronous errors
// (permission violations) the server sends it.
type roleConn struct {
	*nats.Conn
	js     jetstream.JetStream
	errs   chan error
	client *client.Client
}

func connectAs(t *testing.T, url, user string) *roleConn {
	t.Helper()
	rc := &roleConn{errs: make(chan error, 64)}
	nc, err := nats.Connect(url, nats.UserInfo(user, password(user)), nats.Name("test-"+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case rc.errs <- err:
			default:
			}
		}))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	rc.Conn = nc
	rc.js, err = jetstream.New(nc)
	require.NoError(t, err)
	rc.client, err = client.New(nc, client.Config{Timeout: 30 * time.Second})
	require.NoError(t, err)
	return rc
}

// waitEnded polls run id until it ends and returns its status.
func waitEnded(t *testing.T, cl *client.Client, id string) string {
	t.Helper()
	var status string
	eventually(t, 90*time.Second, 50*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := cl.Get(ctx, id)
		if err != nil {
			return false
		}
		status = string(r.Status)
		return ended(status)
	}, func() string { return fmt.Sprintf("run %s did not end (status %q)", id, status) })
	return status
}

// ended reports whether a run status is terminal.
func ended(status string) bool {
	return status == "completed" || status == "failed" || status == "cancelled"
}

// requireRefused runs op (which must fail) and requires the server's
// permission violation naming subject.
func (rc *roleConn) requireRefused(t *testing.T, subject string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = op(ctx) // may time out, or succeed silently (a core publish)
	_ = rc.Flush()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-rc.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
				return
			}
		case <-deadline:
			t.Fatalf("no permission violation for %q within 10s", subject)
		}
	}
}

// TestRolePermissions loads deploy/nats/ into a nats-server, runs a
// coordinator, a worker and a client each as its own user, completes runs
// without one permission violation, then shows what each role may and may
// not do.
func TestRolePermissions(t *testing.T) {
	ns, srvLog := startConfiguredServer(t)
	url := ns.ClientURL()

	// Unknown users and wrong passwords are refused.
	_, err := nats.Connect(url, nats.UserInfo("worker", "wrong"))
	require.ErrorIs(t, err, nats.ErrAuthorization)
	_, err = nats.Connect(url)
	require.ErrorIs(t, err, nats.ErrAuthorization)

	// The processes, each on its own user.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	ready := make(chan struct{})
	go func() {
		done <- app.RunCoordinator(ctx, log.With("proc", "coordinator"), app.CoordinatorConfig{
			NATS:  cli.NATSConfig{URL: url, User: "coordinator", Password: password("coordinator")},
			Ready: func(string) { close(ready) }, DrainTimeout: time.Second,
		}, 20*time.Second)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("coordinator exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("coordinator not ready within 60s")
	}
	go func() {
		done <- app.RunWorker(ctx, log.With("proc", "worker"), app.WorkerConfig{
			NATS:        cli.NATSConfig{URL: url, User: "worker", Password: password("worker")},
			NoProvision: true,
			Extra:       faults.Install,
		}, 20*time.Second)
	}()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(60 * time.Second):
				t.Error("a process did not stop within 60s")
				return
			}
		}
	})

	cl := connectAs(t, url, "client")
	rctx, rcancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer rcancel()
	var runs []string
	for _, wf := range []string{demo.OneTaskName, demo.WorkflowName, demo.ChainName} {
		var id string
		// The worker registers its definitions after start: retry the
		// first trigger until the workflow is known.
		eventually(t, 60*time.Second, 100*time.Millisecond, func() bool {
			id, err = cl.client.Trigger(rctx, wf, nil)
			return err == nil
		}, func() string { return fmt.Sprintf("trigger %s: %v\nviolations:\n%s", wf, err, srvLog) })
		require.Equal(t, "completed", waitEnded(t, cl.client, id), "run of %s\nviolations:\n%s", wf, srvLog)
		runs = append(runs, id)
	}
	// A retried task (retry events, the run's store scope) and a shared
	// breaker opening (breakers bucket, breaker events).
	id, err := cl.client.Trigger(rctx, faults.FlakyName, &client.TriggerOpts{Input: faults.FaultInput{FailUntil: 2}})
	require.NoError(t, err)
	require.Equal(t, "completed", waitEnded(t, cl.client, id), "violations:\n%s", srvLog)
	breakerEvents, err := cl.SubscribeSync(protocol.MustNames("").EventSubject(protocol.BreakerEventWorkflow, faults.GuardedBreaker, protocol.EventBreaker))
	require.NoError(t, err)
	for range faults.GuardedFailureThreshold {
		id, err := cl.client.Trigger(rctx, faults.GuardedName, &client.TriggerOpts{Input: faults.FaultInput{Fail: true}})
		require.NoError(t, err)
		require.Equal(t, "failed", waitEnded(t, cl.client, id), "violations:\n%s", srvLog)
	}
	_, err = breakerEvents.NextMsg(30 * time.Second)
	require.NoError(t, err, "no breaker event from the worker\nviolations:\n%s", srvLog)
	require.Empty(t, srvLog.violations(), "the roles must be enough for a run")

	names := protocol.MustNames("")
	pub := func(rc *roleConn, subj string) func(context.Context) error {
		return func(ctx context.Context) error { _, err := rc.js.Publish(ctx, subj, []byte("x")); return err }
	}
	kvPut := func(rc *roleConn, bucket, key string) func(context.Context) error {
		return func(ctx context.Context) error {
			kv, err := rc.js.KeyValue(ctx, bucket)
			if err != nil {
				return err
			}
			_, err = kv.Put(ctx, key, []byte("x"))
			return err
		}
	}
	kvGet := func(rc *roleConn, bucket, key string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		kv, err := rc.js.KeyValue(ctx, bucket)
		if err != nil {
			return err
		}
		_, err = kv.Get(ctx, key)
		return err
	}

	t.Run("worker", func(t *testing.T) {
		w := connectAs(t, url, "worker")
		co := connectAs(t, url, "coordinator")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// May: pull a task command from its kind's consumer and ack it.
		probe := names.TaskSubject("permprobe", "probe")
		_, err := co.js.Publish(ctx, probe, []byte("cmd"))
		require.NoError(t, err)
		cons, err := w.js.CreateOrUpdateConsumer(ctx, layout.TasksStream(names), jetstream.ConsumerConfig{
			Durable: layout.TaskConsumer("permprobe", "probe"), FilterSubject: probe, AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
		require.NoError(t, err)
		var got int
		for m := range batch.Messages() {
			require.NoError(t, m.DoubleAck(ctx))
			got++
		}
		require.NoError(t, batch.Error())
		require.Equal(t, 1, got)
		// May: send a result, write branch outcomes, the store, presence,
		// breakers, its own workflows' definitions; read run records.
		_, err = w.js.Publish(ctx, names.ResultSubject("permprobe-run"), []byte("not a result"))
		require.NoError(t, err)
		// ... or as a request to the coordinators, which answer it (this
		// one they dead-letter: it is no result).
		_, err = w.RequestWithContext(ctx, names.RPCResultAnySubject(), []byte("not a result"))
		require.NoError(t, err, "a worker's result request was not answered")
		for _, kv := range [][2]string{
			{layout.BranchesBucket(names), "permprobe.1.0"}, {layout.StoreBucket(names), "g.permprobe"},
			{layout.WorkersBucket(names), "permprobe"}, {layout.BreakersBucket(names), "permprobe"},
			{layout.DefinitionsBucket(names), layout.DefinitionKey(demo.OneTaskName, "permprobe")},
		} {
			require.NoError(t, kvPut(w, kv[0], kv[1])(ctx), "put %s %s", kv[0], kv[1])
		}
		require.NoError(t, kvGet(w, layout.RunsBucket(names), runs[0]))

		// May not: start runs, rewrite run records, cancel, register
		// another workflow, consume triggers, change streams.
		w.requireRefused(t, names.TriggerSubject(demo.OneTaskName), pub(w, names.TriggerSubject(demo.OneTaskName)))
		rpc := names.RPCTriggerSubject(demo.OneTaskName)
		w.requireRefused(t, rpc, func(context.Context) error { return w.Publish(rpc, []byte("{}")) })
		w.requireRefused(t, "$KV."+layout.RunsBucket(names)+"."+runs[0], kvPut(w, layout.RunsBucket(names), runs[0]))
		w.requireRefused(t, names.CancelSubject(runs[0]), pub(w, names.CancelSubject(runs[0])))
		completed := names.EventSubject(demo.OneTaskName, runs[0], protocol.EventCompleted)
		w.requireRefused(t, completed, func(context.Context) error { return w.Publish(completed, []byte("forged")) })
		w.requireRefused(t, "def.other_workflow", kvPut(w, layout.DefinitionsBucket(names), layout.DefinitionKey("other_workflow", "1")))
		w.requireRefused(t, "$JS.API.CONSUMER.CREATE."+layout.TriggersStream(names), func(ctx context.Context) error {
			_, err := w.js.CreateOrUpdateConsumer(ctx, layout.TriggersStream(names), jetstream.ConsumerConfig{
				Durable: "thief", FilterSubject: names.TriggerWildcard()})
			return err
		})
		w.requireRefused(t, "$JS.API.STREAM.DELETE.KV_"+layout.RunsBucket(names), func(ctx context.Context) error {
			return w.js.DeleteStream(ctx, "KV_"+layout.RunsBucket(names))
		})
		w.requireRefused(t, "$JS.API.STREAM.PURGE."+layout.TasksStream(names), func(ctx context.Context) error {
			s, err := w.js.Stream(ctx, layout.TasksStream(names))
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		})
		w.requireRefused(t, names.TriggerWildcard(), func(context.Context) error {
			_, err := w.SubscribeSync(names.TriggerWildcard())
			return err
		})
	})

	t.Run("client", func(t *testing.T) {
		c := connectAs(t, url, "client")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// May: trigger (shown above), read run records and events, cancel.
		require.NoError(t, kvGet(c, layout.RunsBucket(names), runs[1]))
		sub, err := c.SubscribeSync(names.EventWildcard())
		require.NoError(t, err)
		require.NoError(t, sub.Unsubscribe())
		require.NoError(t, c.client.Cancel(ctx, runs[1], "permission probe"))
		later, err := c.client.Trigger(ctx, demo.OneTaskName, &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		require.NoError(t, c.client.StartNow(ctx, later))
		require.Equal(t, "completed", waitEnded(t, c.client, later))
		// May not: write run records, pull tasks, send results, reset
		// breakers, fire timers (a start-now is a control request).
		c.requireRefused(t, "$KV."+layout.RunsBucket(names), kvPut(c, layout.RunsBucket(names), runs[1]))
		c.requireRefused(t, "$JS.API.CONSUMER.MSG.NEXT."+layout.TasksStream(names), func(context.Context) error {
			return c.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+layout.TasksStream(names)+"."+layout.TaskConsumer("default", "x"), c.NewRespInbox(), []byte("1"))
		})
		c.requireRefused(t, names.ResultSubject(runs[1]), pub(c, names.ResultSubject(runs[1])))
		c.requireRefused(t, "$KV."+layout.BreakersBucket(names), kvPut(c, layout.BreakersBucket(names), "x"))
		deadline := names.TimerFireSubject(runs[1], layout.TimerName(protocol.TimerRunDeadline, 0))
		c.requireRefused(t, deadline, pub(c, deadline))
		start := names.TimerFireSubject(runs[1], layout.TimerName(protocol.TimerStart, 0))
		c.requireRefused(t, start, pub(c, start))
	})

	t.Run("dashboard", func(t *testing.T) {
		d := connectAs(t, url, "dashboard")
		require.NoError(t, kvGet(d, layout.RunsBucket(names), runs[2]))
		d.requireRefused(t, names.TriggerSubject(demo.OneTaskName), pub(d, names.TriggerSubject(demo.OneTaskName)))
		d.requireRefused(t, names.CancelSubject(runs[2]), pub(d, names.CancelSubject(runs[2])))
		d.requireRefused(t, "$KV."+layout.BreakersBucket(names), kvPut(d, layout.BreakersBucket(names), "x"))
		d.requireRefused(t, "$KV."+layout.SchedulesBucket(names), kvPut(d, layout.SchedulesBucket(names), "flow.x"))
	})

	t.Run("dashboard-admin", func(t *testing.T) {
		a := connectAs(t, url, "dashboard-admin")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		require.NoError(t, kvGet(a, layout.RunsBucket(names), runs[2]))
		id, err := a.client.Trigger(ctx, demo.OneTaskName, nil)
		require.NoError(t, err)
		require.Equal(t, "completed", waitEnded(t, a.client, id))
		require.NoError(t, kvPut(a, layout.BreakersBucket(names), "permprobe")(ctx))
		a.requireRefused(t, "$KV."+layout.RunsBucket(names), kvPut(a, layout.RunsBucket(names), runs[2]))
		a.requireRefused(t, "$JS.API.STREAM.DELETE.", func(ctx context.Context) error {
			return a.js.DeleteStream(ctx, layout.TriggersStream(names))
		})
	})

	// canoctl as the client user: what the role may do works; what it may
	// not ends at the server's refusal, named with the user and what to do,
	// not after --timeout with "context deadline exceeded".
	t.Run("canoctl", func(t *testing.T) {
		canoctlAs := func(user string, args ...string) (code int, stdout, stderr string) {
			var out, errOut strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			args = append([]string{"-s", url, "--user", user, "--password", password(user), "--timeout", "60s"}, args...)
			code = canoctl.Main(ctx, args, canoctl.IO{Stdout: &out, Stderr: &errOut,
				LookupEnv: func(string) (string, bool) { return "", false }})
			return code, out.String(), errOut.String()
		}
		for _, args := range [][]string{{"runs", "ls"}, {"runs", "show", runs[1]}, {"workflows", "ls"}, {"workflows", "show", demo.OneTaskName},
			{"workers", "ls"}, {"trigger", demo.OneTaskName, "--wait"}} {
			code, out, errOut := canoctlAs("client", args...)
			require.Equal(t, canoctl.ExitOK, code, "canoctl %v as client\nstdout: %s\nstderr: %s", args, out, errOut)
		}
		for _, args := range [][]string{{"dlq", "ls"}, {"flows", "ls"}, {"breakers", "ls"}} {
			code, _, errOut := canoctlAs("client", args...)
			require.Equal(t, canoctl.ExitFailed, code, "canoctl %v as client", args)
			require.Contains(t, errOut, "permissions violation")
			require.Contains(t, errOut, `user "client" may not do this; connect as a user that may`)
			require.NotContains(t, errOut, "deadline exceeded")
		}
		code, _, errOut := canoctlAs("dashboard-admin", "dlq", "ls")
		require.Equal(t, canoctl.ExitOK, code, errOut)
	})
}

// unlisted is the task of a workflow deploy/nats/accounts.conf does not
// list for the worker role.
type unlisted struct{}

func (unlisted) Kind() string { return "unlisted_noop" }
func (unlisted) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next("done"), nil
}

// TestWorkerRefusedDefinition checks that a worker whose user may not
// register one of its workflows' definitions stops with an error naming
// the refused subject and where the permissions are, instead of waiting
// for NATS for ever (the refused request would only time out).
func TestWorkerRefusedDefinition(t *testing.T) {
	ns, _ := startConfiguredServer(t)
	url := ns.ClientURL()
	co := connectAs(t, url, "coordinator")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	require.NoError(t, provision.Ensure(ctx, co.js, provision.Config{}))
	var logs natstest.LogBuffer
	err := app.RunWorker(ctx, slog.New(slog.NewTextHandler(&logs, nil)), app.WorkerConfig{
		NATS:        cli.NATSConfig{URL: url, User: "worker", Password: password("worker")},
		NoProvision: true,
		Extra: func(reg *fsm.Registry) []worker.Definer {
			fsm.Register[unlisted](reg)
			return []worker.Definer{fsm.New[string]("unlisted", "work").Register("work", unlisted{}).Exit("done")}
		},
	}, 5*time.Second)
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "it stopped on the refusal, not at the test's deadline")
	require.Contains(t, err.Error(), `Permissions Violation for Publish to "$KV.cano_definitions.`)
	require.Contains(t, err.Error(), "unlisted")
	require.Contains(t, err.Error(), "deploy/nats/accounts.conf")
	require.NotContains(t, logs.String(), "waiting for NATS", "a refusal is not a wait for the broker")
	t.Logf("the worker stopped with: %v", err)
}
