package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wire/health"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/protocol"
)

// composeCmd is the compose tool that answers here ("docker compose" or
// "docker-compose"), or nil.
func composeCmd() []string {
	for _, c := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		args := append(append([]string{}, c[1:]...), "version")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := exec.CommandContext(ctx, c[0], args...).Run()
		cancel()
		if err == nil {
			return c
		}
	}
	return nil
}

// dockerOrSkip skips the test unless a Docker engine and a compose tool
// answer.
func dockerOrSkip(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("compose end-to-end test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine answers (docker info: %v: %s): skipping the compose end-to-end test", err, bytes.TrimSpace(out))
	}
	c := composeCmd()
	if c == nil {
		t.Skip("neither `docker compose` nor `docker-compose` runs: skipping the compose end-to-end test")
	}
	return c
}

func run(t *testing.T, timeout time.Duration, env []string, dir string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// freePort is a loopback port free now, below Linux's ephemeral range
// (32768 and up by default): Docker binds it only later, and a port the
// kernel hands out — to the tests of other packages running beside this
// one, or as a connection's source port — could be taken by then ("port is
// already allocated"). It is none of taken's.
func freePort(t *testing.T, taken map[string]int) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		if slices.Contains(slices.Collect(maps.Values(taken)), port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // in use: another
		}
		l.Close()
		return port
	}
	t.Fatal("no free loopback port in 20000-31999 after 200 tries")
	return 0
}

// cluster is the compose project under test.
type cluster struct {
	t       *testing.T
	compose []string
	project string
	env     []string
	ports   map[string]int // NATS_1_PORT, COORDINATOR_1_METRICS_PORT, ...
}

func (c *cluster) run(timeout time.Duration, args ...string) string {
	c.t.Helper()
	full := append(append(append([]string{}, c.compose[1:]...), "-p", c.project, "-f", "compose.yaml"), args...)
	return run(c.t, timeout, c.env, ".", c.compose[0], full...)
}

// container is the container id of service.
func (c *cluster) container(service string) string {
	c.t.Helper()
	return strings.TrimSpace(c.run(time.Minute, "ps", "-q", service))
}

func (c *cluster) natsURLs() string {
	return fmt.Sprintf("nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d",
		c.ports["NATS_1_PORT"], c.ports["NATS_2_PORT"], c.ports["NATS_3_PORT"])
}

// waitReady waits until every coordinator's and worker's /readyz answers 200.
func (c *cluster) waitReady(timeout time.Duration) {
	c.t.Helper()
	for _, svc := range []string{"COORDINATOR_1", "COORDINATOR_2", "WORKER_1", "WORKER_2", "WORKER_3"} {
		u := fmt.Sprintf("http://127.0.0.1:%d%s", c.ports[svc+"_METRICS_PORT"], health.ReadyPath)
		var err error
		eventually(c.t, timeout, 250*time.Millisecond, func() bool {
			err = health.Probe(context.Background(), u)
			return err == nil
		}, func() string { return fmt.Sprintf("%s not ready: %v", svc, err) })
	}
}

// buildImages builds the binaries (static) and the two images FROM
// scratch, and returns their tags.
func buildImages(t *testing.T, tag string) (cano, natsImg string) {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	ctxDir := t.TempDir()
	bin := filepath.Join(ctxDir, "bin")
	env := append(os.Environ(), "CGO_ENABLED=0")
	rev := strings.TrimSpace(run(t, time.Minute, nil, root, "git", "rev-parse", "--short=12", "HEAD"))
	ldflags := "-s -w -X github.com/cano-nats/cano/internal/version.Version=e2e-" + rev
	run(t, 10*time.Minute, env, root, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin+"/", "./cmd/coordinator", "./cmd/worker", "./cmd/canoctl")
	natsCtx := t.TempDir()
	run(t, 10*time.Minute, env, root, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(natsCtx, "bin", "nats-server"), "github.com/nats-io/nats-server/v2")

	cano, natsImg = "cano-e2e:"+tag, "cano-nats-e2e:"+tag
	run(t, 5*time.Minute, os.Environ(), root, "docker", "build", "-q", "-f", "deploy/Dockerfile", "--target", "prebuilt",
		"--build-arg", "BASE=scratch", "-t", cano, ctxDir)
	run(t, 5*time.Minute, os.Environ(), root, "docker", "build", "-q", "-f", "deploy/nats.Dockerfile", "--target", "prebuilt",
		"-t", natsImg, natsCtx)
	t.Cleanup(func() {
		_ = exec.Command("docker", "rmi", "-f", cano, natsImg).Run()
	})
	for _, img := range []string{cano, natsImg} {
		size := strings.TrimSpace(run(t, time.Minute, nil, root, "docker", "image", "inspect", "--format", "{{.Size}}", img))
		n, _ := strconv.ParseInt(size, 10, 64)
		t.Logf("image %s: %.1f MB", img, float64(n)/1e6)
	}
	out := run(t, time.Minute, nil, root, "docker", "run", "--rm", cano, "coordinator", "-version")
	require.Contains(t, out, "cano e2e-"+rev)
	return cano, natsImg
}

// runBatch is runs of one workflow triggered in one phase.
type runBatch struct {
	workflow string
	path     []string
	ids      []string
}

// trigger starts n runs of wf, retrying each (with its own run id, so a
// retry cannot start a second run) while the cluster is unsettled.
func trigger(t *testing.T, cl *client.Client, wf string, path []string, n int, phase string) *runBatch {
	t.Helper()
	b := &runBatch{workflow: wf, path: path}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for i := range n {
		id := fmt.Sprintf("e2e-%s-%04d", phase, i)
		var err error
		for {
			_, err = cl.Trigger(ctx, wf, &client.TriggerOpts{RunID: id, NoWait: true})
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond) // bounded by ctx: the cluster is electing
		}
		require.NoError(t, err, "trigger %s", id)
		b.ids = append(b.ids, id)
	}
	return b
}

// awaitAll waits until every run of the batches has ended, and requires
// each completed with its exact path.
func awaitAll(t *testing.T, cl *client.Client, timeout time.Duration, batches ...*runBatch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, b := range batches {
		pending := append([]string{}, b.ids...)
		var last string // the state of a pending run, for the failure message
		for len(pending) > 0 {
			var still []string
			for _, id := range pending {
				// Each read bounded on its own: a JetStream request sent
				// while a stream elects its leader may never be answered,
				// and must not use up the whole wait.
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				rec, err := cl.Get(rctx, id)
				rcancel()
				switch {
				case err != nil:
					require.NoError(t, ctx.Err(), "runs of %s still pending: %d, e.g. %s (%s)", b.workflow, len(pending), id, last)
					still = append(still, id)
					last = id + ": " + err.Error()
				case !ended(string(rec.Status)):
					still = append(still, id)
					last = fmt.Sprintf("%s: %s in %s (step %v)", id, rec.Status, rec.State, rec.Step)
				default:
					require.Equal(t, "completed", string(rec.Status), "run %s: %+v", id, rec)
					require.Equal(t, b.path, rec.Path, "run %s", id)
				}
			}
			pending = still
			if len(pending) > 0 {
				require.NoError(t, ctx.Err(), "%d runs of %s did not end, e.g. %s: %s", len(pending), b.workflow, pending[0], last)
				time.Sleep(250 * time.Millisecond)
			}
		}
	}
}

// TestComposeCluster builds the images, brings deploy/compose.yaml up
// (three NATS nodes, two coordinators, three workers, each on its own
// NATS user) and runs 1,000 runs through it while it breaks: a NATS node
// stops and comes back, a coordinator is cut from the network and
// reconnected, a worker is killed mid-task. Every run completes exactly
// once with its exact path.
func TestComposeCluster(t *testing.T) {
	compose := dockerOrSkip(t)
	start := time.Now()
	tag := fmt.Sprintf("t%d", time.Now().UnixNano()%1e9)
	canoImg, natsImg := buildImages(t, tag)
	t.Logf("binaries and images built in %s", time.Since(start).Round(time.Second))

	c := &cluster{t: t, compose: compose, project: "canoe2e" + tag, ports: map[string]int{}}
	c.env = append(os.Environ(), "CANO_IMAGE="+canoImg, "NATS_IMAGE="+natsImg)
	for _, k := range []string{"NATS_1_PORT", "NATS_2_PORT", "NATS_3_PORT", "COORDINATOR_1_METRICS_PORT",
		"COORDINATOR_2_METRICS_PORT", "WORKER_1_METRICS_PORT", "WORKER_2_METRICS_PORT", "WORKER_3_METRICS_PORT",
		"DASHBOARD_PORT"} { // every published port free, so a busy 8080 on the host fails nothing
		c.ports[k] = freePort(t, c.ports)
		c.env = append(c.env, fmt.Sprintf("%s=%d", k, c.ports[k]))
	}
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, _ := exec.CommandContext(ctx, compose[0], append(append([]string{}, compose[1:]...),
				"-p", c.project, "-f", "compose.yaml", "logs", "--no-color", "--tail", "40")...).CombinedOutput()
			cancel()
			t.Logf("compose logs:\n%s", out)
		}
		down := append(append([]string{}, compose[1:]...), "-p", c.project, "-f", "compose.yaml", "down", "-v", "--remove-orphans", "-t", "5")
		if os.Getenv("CANO_E2E_KEEP") != "" {
			t.Logf("CANO_E2E_KEEP is set: the cluster stays up; tear it down with (in deploy/): %s %s", compose[0], strings.Join(down, " "))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, compose[0], down...)
		cmd.Env = c.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("compose down: %v\n%s", err, out)
		}
	})
	c.run(5*time.Minute, "up", "-d", "--no-build")
	c.waitReady(3 * time.Minute)
	t.Logf("cluster ready %s after the start", time.Since(start).Round(time.Second))

	nc, err := nats.Connect(c.natsURLs(), nats.UserInfo("client", "client-dev"), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.IgnoreDiscoveredServers(), nats.DontRandomize())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	cl, err := client.New(nc, client.Config{Timeout: 10 * time.Second})
	require.NoError(t, err)

	// Completion events, counted per run: exactly one each.
	var mu sync.Mutex
	completed := map[string]int{}
	sub, err := nc.Subscribe(protocol.MustNames("").EventSubject("*", "*", protocol.EventCompleted), func(m *nats.Msg) {
		if id := eventRunID(m.Data); id != "" {
			mu.Lock()
			completed[id]++
			mu.Unlock()
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	oneTask, sleepy := []string{"work", "done"}, []string{"sleep", "after", "done"}
	var all []*runBatch
	phase := func(name string) { t.Logf("%s: %s", time.Since(start).Round(time.Second), name) }

	phase("250 runs on the healthy cluster")
	b := trigger(t, cl, demo.OneTaskName, oneTask, 250, "steady")
	awaitAll(t, cl, 3*time.Minute, b)
	all = append(all, b)

	phase("stop nats-3; 250 runs")
	c.run(2*time.Minute, "stop", "-t", "5", "nats-3")
	b = trigger(t, cl, demo.OneTaskName, oneTask, 250, "natsdown")
	awaitAll(t, cl, 3*time.Minute, b)
	all = append(all, b)
	phase("start nats-3; wait until it is current on the runs bucket")
	c.run(2*time.Minute, "start", "nats-3")
	waitReplicasCurrent(t, nc, "KV_"+layout.RunsBucket(protocol.MustNames("")), 3*time.Minute)

	phase("cut coordinator-1 from the network; 250 runs complete without it; reconnect it")
	network := c.project + "_default"
	coord := c.container("coordinator-1")
	run(t, time.Minute, nil, ".", "docker", "network", "disconnect", network, coord)
	b = trigger(t, cl, demo.OneTaskName, oneTask, 250, "partition")
	// Inputs coordinator-1 held when cut come back to coordinator-2 after
	// the coordinators' ack wait (30 s).
	awaitAll(t, cl, 3*time.Minute, b)
	all = append(all, b)
	run(t, time.Minute, nil, ".", "docker", "network", "connect", network, coord)
	c.waitReady(3 * time.Minute)

	phase("kill worker-2 mid-task; sleepy runs until the kill lands")
	// The operator's view of results (a core subscription as the
	// coordinator user: it does not consume them): who ran each task and
	// in how many attempts. worker-2 is killed at its first result of this
	// phase, while the triggers are still being sent, so it holds tasks.
	ops, err := nats.Connect(c.natsURLs(), nats.UserInfo("coordinator", "coordinator-dev"), nats.MaxReconnects(-1),
		nats.IgnoreDiscoveredServers())
	require.NoError(t, err)
	t.Cleanup(ops.Close)
	type attempt struct {
		worker   string
		attempts uint32
	}
	var rmu sync.Mutex
	results := map[string]attempt{} // "run step N" → its task's result
	killed := make(chan error, 1)
	var killOnce sync.Once
	worker2 := c.container("worker-2")
	// Results go to the coordinators as requests, or to the results stream.
	onResult := func(m *nats.Msg) {
		var r protocol.TaskResult
		if wirecodec.Decode(m.Data, &r, 0) != nil || !strings.HasPrefix(r.RunID, "e2e-workerkill-") {
			return
		}
		rmu.Lock()
		results[fmt.Sprintf("%s step %d", r.RunID, r.Step)] = attempt{r.Worker, r.Attempts}
		rmu.Unlock()
		if r.Worker == "worker-2" {
			killOnce.Do(func() {
				go func() { killed <- exec.Command("docker", "kill", worker2).Run() }()
			})
		}
	}
	names := protocol.MustNames("")
	var rsubs []*nats.Subscription
	for _, subject := range []string{names.ResultWildcard(), names.RPCResultSubject("*"), names.RPCResultAnySubject()} {
		rsub, err := ops.Subscribe(subject, onResult)
		require.NoError(t, err)
		rsubs = append(rsubs, rsub)
	}
	require.NoError(t, ops.Flush())
	// Runs keep coming, 50 at a time, until the kill has landed: worker-2 is
	// then still being handed tasks, so it holds some (its tasks take
	// 300 ms; a kill landing after a pause in the triggers found it idle).
	b = &runBatch{workflow: demo.SleepyName, path: sleepy}
	for round := 0; round < 40 && len(killed) == 0; round++ {
		b.ids = append(b.ids, trigger(t, cl, demo.SleepyName, sleepy, 50, fmt.Sprintf("workerkill-%02d", round)).ids...)
	}
	select {
	case err := <-killed:
		require.NoError(t, err, "docker kill worker-2")
	case <-time.After(2 * time.Minute):
		t.Fatal("worker-2 sent no result within 2 minutes")
	}
	awaitAll(t, cl, 4*time.Minute, b)
	all = append(all, b)
	for _, rsub := range rsubs {
		require.NoError(t, rsub.Unsubscribe())
	}
	rmu.Lock()
	var redelivered []string
	elsewhere := 0
	for id, a := range results {
		if a.attempts > 1 {
			redelivered = append(redelivered, fmt.Sprintf("%s: attempt %d on %s", id, a.attempts, a.worker))
			if a.worker != "worker-2" {
				elsewhere++
			}
		}
	}
	rmu.Unlock()
	t.Logf("tasks worker-2 held when killed, redelivered: %d (%d ran on another worker)", len(redelivered), elsewhere)
	require.NotEmpty(t, redelivered, "no task was redelivered: worker-2 held none when killed")
	require.Positive(t, elsewhere, "every redelivered attempt ran on worker-2 again: %v", redelivered)

	// Every run completed exactly once with its exact path.
	phase("checking every run")
	total := 0
	for _, b := range all {
		awaitAll(t, cl, time.Minute, b)
		total += len(b.ids)
	}
	require.GreaterOrEqual(t, total, 800, "750 runs before the worker kill and at least 50 after")
	mu.Lock()
	defer mu.Unlock()
	var dup, missing []string
	for _, b := range all {
		for _, id := range b.ids {
			switch completed[id] {
			case 1:
			case 0:
				missing = append(missing, id)
			default:
				dup = append(dup, id)
			}
		}
	}
	require.Empty(t, dup, "runs with more than one completion event")
	t.Logf("completion events: %d of 1000 seen by a core subscription (%d missing: core NATS does not redeliver)", 1000-len(missing), len(missing))
	t.Logf("end-to-end wall time %s", time.Since(start).Round(time.Second))
}

// eventRunID is the run id of an event, msgpack or JSON; "" if neither.
func eventRunID(data []byte) string {
	var ev protocol.Event
	if wirecodec.Decode(data, &ev, 0) == nil {
		return ev.RunID
	}
	var js struct {
		RunID string `json:"run_id"`
	}
	if json.Unmarshal(data, &js) == nil {
		return js.RunID
	}
	return ""
}

// waitReplicasCurrent waits until stream's three replicas are all online
// and current: the node that was stopped has rejoined and caught up.
func waitReplicasCurrent(t *testing.T, nc *nats.Conn, stream string, timeout time.Duration) {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var last string
	eventually(t, timeout, 500*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			last = err.Error()
			return false
		}
		ci := s.CachedInfo().Cluster
		if ci == nil || len(ci.Replicas) != 2 {
			last = fmt.Sprintf("cluster info %+v", ci)
			return false
		}
		for _, r := range ci.Replicas {
			if !r.Current || r.Offline {
				last = fmt.Sprintf("replica %s current=%v offline=%v lag=%d", r.Name, r.Current, r.Offline, r.Lag)
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("%s replicas not current: %s", stream, last) })
}
