package canoctl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// bin is the canoctl binary TestMain builds.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "canoctl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "canoctl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cano-nats/cano/cmd/canoctl").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build canoctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// fail fails for good with an error naming its input.
type fail struct {
	Msg string `msgpack:"msg"`
}

func (fail) Kind() string { return "test_fail" }
func (f fail) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Result{}, fsm.Permanent(errors.New(f.Msg))
}

// echo completes with its run's input.
type echo struct{}

func (echo) Kind() string { return "test_echo" }
func (echo) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	var in map[string]any
	if err := tc.Input(&in); err != nil {
		return fsm.Result{}, fsm.Permanent(err)
	}
	return fsm.NextWith("done", in), nil
}

// block runs until its context is cancelled, and reports both on the
// test's channels.
type block struct{}

var (
	blockStarted   = make(chan struct{}, 16)
	blockCancelled = make(chan struct{}, 16)
)

func (block) Kind() string { return "test_block" }
func (block) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	signal(blockStarted)
	<-ctx.Done()
	signal(blockCancelled)
	return fsm.Result{}, ctx.Err()
}

// gate waits until the test opens gateOpen (or its context ends), and
// reports its start on gateStarted.
type gate struct{}

var (
	gateStarted = make(chan struct{}, 16)
	gateOpen    = make(chan struct{})
)

func (gate) Kind() string { return "test_gate" }
func (gate) Run(ctx context.Context, tc *fsm.TaskContext) (fsm.Result, error) {
	signal(gateStarted)
	select {
	case <-gateOpen:
		return fsm.NextWith("done", "through"), nil
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	}
}

// orphan is served by a worker that stops at once.
type orphan struct{}

func (orphan) Kind() string { return "test_orphan" }
func (orphan) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next("done"), nil
}

type bundle struct {
	url string
	nc  *nats.Conn
	cl  *client.Client
	env []string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := natstest.StartProvisioned(t, provision.Config{})
	nc, _ := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := &fsm.Registry{}
	demo.Register(reg)
	fsm.Register[fail](reg)
	fsm.Register[echo](reg)
	fsm.Register[block](reg)
	fsm.Register[gate](reg)
	wfs := []worker.Definer{
		demo.Workflow(),
		fsm.New[string]("failing", "try").Register("try", fail{Msg: "the payment gateway said no"}).Exit("done"),
		fsm.New[string]("echo", "echo").Register("echo", echo{}).Exit("done"),
		fsm.New[string]("blocking", "wait").Register("wait", block{}).Exit("done"),
		fsm.New[string]("gated", "gate").Register("gate", gate{}).Exit("done"),
	}
	w, err := worker.New(nc, worker.Config{ID: "w1", Registry: reg, Workflows: wfs})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { stopWithin(w.Stop) })
	co, err := coordinator.New(nc, coordinator.Config{})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { stopWithin(co.Stop) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)
	home := t.TempDir() // no nats CLI context from the real home
	return &bundle{url: srv.URL, nc: nc, cl: cl, env: []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "NATS_URL=" + srv.URL}}
}

// stopWithin stops a worker or coordinator within 10 s: a task still in
// flight (a blocking or gated one) is cancelled then, rather than waited
// for without end.
func stopWithin(stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = stop(ctx)
}

// signal sends on ch without blocking: a task redelivered more often than
// ch holds does not hang on it.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// canoctl runs the binary with args and returns its output and exit code.
func (b *bundle) canoctl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, b.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("canoctl %s → %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}

// oneErrorLine checks a failed command's stderr is one "canoctl: " line.
func oneErrorLine(t *testing.T, r result, code int, contains string) {
	t.Helper()
	require.Equal(t, code, r.code, r.stderr)
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	require.Len(t, lines, 1, r.stderr)
	require.True(t, strings.HasPrefix(lines[0], "canoctl: "), lines[0])
	require.Contains(t, lines[0], contains)
}

func TestCanoctl(t *testing.T) {
	t.Parallel()
	b := setup(t)

	t.Run("trigger --wait succeeds with the outcome", func(t *testing.T) {
		r := b.canoctl(t, "trigger", demo.WorkflowName, "--wait")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "split")
		require.Contains(t, r.stdout, "state     aggregate")
		require.Contains(t, r.stdout, "completed in complete")
		require.Contains(t, r.stdout, `output: "data_from_1,data_from_2,data_from_3"`)
	})

	t.Run("trigger --wait reads the record until it shows the announced end", func(t *testing.T) {
		// On a cluster the completion event can arrive before the replica
		// that answers the record read has applied the record's last write.
		// Here the event comes first for real: a completion event is sent
		// for the run while its task still runs, and the task then finishes.
		cmd := exec.Command(bin, "trigger", "gated", "--wait")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, b.env...)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		lines := make(chan string, 64)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var id string
		var out []string
		for id == "" {
			select {
			case l, ok := <-lines:
				if !ok {
					_ = cmd.Wait()
					t.Fatalf("canoctl ended before naming the run: %s %s", strings.Join(out, "\n"), stderr.String())
				}
				out = append(out, l)
				if f := strings.Fields(l); len(f) == 4 && f[0] == "run" && f[2] == "of" {
					id = f[1] // printed after its event watch started
				}
			case <-time.After(30 * time.Second):
				t.Fatal("canoctl did not name the run")
			}
		}
		natstest.Recv(t, gateStarted, 30*time.Second)
		nc, err := nats.Connect(b.url)
		require.NoError(t, err)
		defer nc.Close()
		ev := protocol.Event{V: protocol.SchemaVersion, Type: protocol.EventCompleted, RunID: id, Workflow: "gated",
			State: "done", Step: 1, Status: protocol.RunCompleted, Time: time.Now().UnixNano()}
		require.NoError(t, nc.Publish(protocol.MustNames("").EventSubject("gated", id, protocol.EventCompleted),
			wirecodec.AppendEventJSON(nil, &ev)))
		require.NoError(t, nc.Flush())
		for l := range lines { // the announced end is printed before the record is read
			out = append(out, l)
			if strings.Contains(l, "completed in done") {
				break
			}
		}
		gateOpen <- struct{}{}
		for l := range lines {
			out = append(out, l)
		}
		err = cmd.Wait()
		t.Logf("canoctl trigger gated --wait:\n%s\n%s", strings.Join(out, "\n"), stderr.String())
		require.NoError(t, err, "exit status; stderr: %s", stderr.String())
		require.Contains(t, strings.Join(out, "\n"), `output: "through"`)
	})

	t.Run("trigger --wait exits 1 when the run fails", func(t *testing.T) {
		r := b.canoctl(t, "trigger", "failing", "--wait")
		oneErrorLine(t, r, 1, "failed in state try")
		require.Contains(t, r.stderr, "the payment gateway said no")
		require.Contains(t, r.stdout, "failed")
	})

	t.Run("trigger --json --input and runs show", func(t *testing.T) {
		r := b.canoctl(t, "trigger", "echo", "--input", `{"n": 3, "who": "ada"}`, "--key", "k1", "--wait", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		for _, l := range lines {
			require.True(t, json.Valid([]byte(l)), l)
		}
		var out struct {
			Outcome string
			Run     struct {
				ID     string
				Output map[string]any
			}
		}
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &out))
		require.Equal(t, "completed", out.Outcome)
		require.Equal(t, map[string]any{"n": float64(3), "who": "ada"}, out.Run.Output)

		show := b.canoctl(t, "runs", "show", out.Run.ID)
		require.Equal(t, 0, show.code, show.stderr)
		for _, want := range []string{"Status:", "completed", "Idempotency key:", "k1", "History:", "STEP", "echo", "task", "ok", "w1", `Output:`, `"who":"ada"`, "done", "exit"} {
			require.Contains(t, show.stdout, want)
		}
		js := b.canoctl(t, "runs", "show", out.Run.ID, "--json")
		var rv map[string]any
		require.NoError(t, json.Unmarshal([]byte(js.stdout), &rv))
		require.Len(t, rv["history"], 2)

		// The key again: nothing started, and canoctl says so.
		again := b.canoctl(t, "trigger", "echo", "--key", "k1")
		require.Equal(t, 0, again.code, again.stderr)
		require.Equal(t, "nothing started: run "+out.Run.ID+" of echo already has the idempotency key k1 (see it with: canoctl runs show "+out.Run.ID+")\n", again.stdout)
		again = b.canoctl(t, "trigger", "echo", "--key", "k1", "--json")
		require.Equal(t, 0, again.code, again.stderr)
		require.JSONEq(t, `{"run_id":"`+out.Run.ID+`","workflow":"echo","existing":true}`, again.stdout)
	})

	t.Run("JSON and values leave <, > and & as they are", func(t *testing.T) {
		r := b.canoctl(t, "trigger", "echo", "--input", `{"v": "<nil> & >"}`, "--wait", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, `"v":"<nil> & >"`)
		require.NotContains(t, r.stdout, `\u003c`)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		var out struct{ Run struct{ ID string } }
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &out))
		show := b.canoctl(t, "runs", "show", out.Run.ID)
		require.Equal(t, 0, show.code, show.stderr)
		require.Contains(t, show.stdout, `"v":"<nil> & >"`)
	})

	t.Run("runs show a split run and a failed run", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		run, err := b.cl.Run(ctx, demo.WorkflowName, nil)
		require.NoError(t, err)
		show := b.canoctl(t, "runs", "show", run.ID)
		require.Equal(t, 0, show.code)
		require.Contains(t, show.stdout, "split: join all")
		require.Contains(t, show.stdout, "3 static branches: 3 ok")
		show = b.canoctl(t, "runs", "show", run.ID, "--json")
		require.Equal(t, 0, show.code)
		require.Contains(t, show.stdout, `"split": {`)
		require.Contains(t, show.stdout, `"strategy": "all"`, "snake_case, as every other field")
		require.Contains(t, show.stdout, `"succeeded": 3`)
		require.NotContains(t, show.stdout, `"Strategy"`)

		run, err = b.cl.Run(ctx, "failing", nil)
		require.Error(t, err)
		show = b.canoctl(t, "runs", "show", run.ID)
		require.Equal(t, 0, show.code)
		require.Contains(t, show.stdout, "\nError: in state \"try\" (attempt 1, path try): ")
		require.Contains(t, show.stdout, "the payment gateway said no")
		require.NotContains(t, show.stdout, "  in state try", "the error says where already")
	})

	t.Run("runs list --json parses", func(t *testing.T) {
		r := b.canoctl(t, "runs", "list", "--json", "--since", "1h")
		require.Equal(t, 0, r.code)
		var runs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
		require.NotEmpty(t, runs)
		r = b.canoctl(t, "runs", "list", "--status", "failed")
		require.Equal(t, 0, r.code)
		require.Contains(t, r.stdout, "failing")
		require.NotContains(t, r.stdout, "echo ")
	})

	t.Run("runs list says when --limit left runs out", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for range 2 {
			_, err := b.cl.Run(ctx, "echo", &client.TriggerOpts{Input: map[string]any{"who": "limit"}})
			require.NoError(t, err)
		}
		r := b.canoctl(t, "runs", "list", "--limit", "1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Len(t, strings.Split(strings.TrimRight(r.stdout, "\n"), "\n"), 2, "the header and one run: %s", r.stdout)
		require.Regexp(t, `^… and \d+ more runs?: use --limit 0 for all, or narrow with --workflow, --status or --since\n$`, r.stderr)
		r = b.canoctl(t, "runs", "list", "--limit", "1", "--workflow", "echo", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var runs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs), "stdout stays JSON")
		require.Len(t, runs, 1)
		require.Contains(t, r.stderr, "use --limit 0 for all, or narrow with --status or --since")
		r = b.canoctl(t, "runs", "list", "--limit", "0")
		require.Equal(t, 0, r.code, r.stderr)
		require.Empty(t, r.stderr)
	})

	t.Run("runs list --workflow of no registered workflow says so", func(t *testing.T) {
		r := b.canoctl(t, "runs", "list", "--workflow", "ecoh")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "no runs\n", r.stdout)
		require.Equal(t, "no workflow named ecoh is registered (did you mean echo?); list them with: canoctl workflows list\n", r.stderr)
		r = b.canoctl(t, "runs", "list", "--workflow", "nope", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "[]\n", r.stdout)
		require.Equal(t, "no workflow named nope is registered; list them with: canoctl workflows list\n", r.stderr)
		r = b.canoctl(t, "runs", "list", "--workflow", "blocking", "--status", "completed")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "no runs\n", r.stdout)
		require.Empty(t, r.stderr, "a registered workflow without such runs")
	})

	t.Run("lists print a table, or a JSON array with --json", func(t *testing.T) {
		for _, tc := range []struct {
			args   []string
			header string // the table's first column and a row's cell
			cell   string
		}{
			{[]string{"workflows", "list"}, "NAME", "echo"},
			{[]string{"workers", "list"}, "ID", "w1"},
		} {
			r := b.canoctl(t, tc.args...)
			require.Equal(t, 0, r.code, r.stderr)
			require.True(t, strings.HasPrefix(r.stdout, tc.header+" "), r.stdout)
			require.Contains(t, r.stdout, tc.cell)
			r = b.canoctl(t, append(tc.args, "--json")...)
			require.Equal(t, 0, r.code, r.stderr)
			var views []map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &views))
			require.NotEmpty(t, views)
		}
		r := b.canoctl(t, "breakers", "list")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "no breakers (a breaker appears once a worker has used it)\n", r.stdout)
		r = b.canoctl(t, "breakers", "list", "--json")
		require.Equal(t, "[]\n", r.stdout, "no breakers: an empty array, not null")
	})

	t.Run("runs cancel stops a running task", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		id, err := b.cl.Trigger(ctx, "blocking", nil)
		require.NoError(t, err)
		natstest.Recv(t, blockStarted, 30*time.Second)
		r := b.canoctl(t, "runs", "cancel", id, "--reason", "test", "--wait")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "cancelled")
		natstest.Recv(t, blockCancelled, 30*time.Second)
		run, err := b.cl.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, client.RunCancelled, run.Status)
	})

	t.Run("runs show says which task kind of a running run no live worker serves", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A worker registers the workflow and goes away: its kind is
		// served by nobody, and the run waits in its first state.
		reg := &fsm.Registry{}
		fsm.Register[orphan](reg)
		w2, err := worker.New(b.nc, worker.Config{ID: "w2", Registry: reg,
			Workflows: []worker.Definer{fsm.New[string]("orphaned", "work").Register("work", orphan{}).Exit("done")}})
		require.NoError(t, err)
		require.NoError(t, w2.Start(ctx))
		require.NoError(t, w2.Stop(ctx))
		id, err := b.cl.Trigger(ctx, "orphaned", nil)
		require.NoError(t, err)
		natstest.WaitFor(t, 30*time.Second, "the run to be running in state work", func() bool {
			r, err := b.cl.Get(ctx, id)
			return err == nil && r.Status == client.RunRunning && r.State == "work"
		})
		want := `run ` + id + ` waits in state "work" for task kind "test_orphan", which no live worker serves: start a worker that registers it`
		r := b.canoctl(t, "runs", "show", id)
		require.Equal(t, 0, r.code, r.stderr)
		require.True(t, strings.HasPrefix(r.stdout, "Run: "), "no blank first line: %q", r.stdout)
		require.Contains(t, r.stdout, "running")
		require.Contains(t, r.stderr, want)
		r = b.canoctl(t, "runs", "show", id, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.True(t, json.Valid([]byte(r.stdout)), "stdout stays the record's JSON")
		require.Contains(t, r.stderr, want)
		require.NoError(t, b.cl.Cancel(ctx, id, "test over"))
	})

	t.Run("trigger --in schedules a run; runs show and list say so; runs cancel ends it", func(t *testing.T) {
		r := b.canoctl(t, "trigger", "echo", "--in", "1h")
		require.Equal(t, 0, r.code, r.stderr)
		f := strings.Fields(r.stdout)
		require.GreaterOrEqual(t, len(f), 3, r.stdout)
		require.Equal(t, "scheduled", f[0], r.stdout)
		id := f[2]
		require.Contains(t, r.stdout, "to start at ")
		require.Contains(t, r.stdout, "canoctl runs cancel "+id)
		r = b.canoctl(t, "runs", "show", id)
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `Status:\s+scheduled`, r.stdout)
		require.Regexp(t, `Starts:\s+\S`, r.stdout)
		require.Contains(t, r.stdout, "(start it now with: canoctl runs start "+id+"; cancel it with: canoctl runs cancel "+id+")")
		require.Regexp(t, `Triggered:\s+\S`, r.stdout)
		r = b.canoctl(t, "runs", "show", id, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var v struct {
			Status  string    `json:"status"`
			StartAt time.Time `json:"start_at"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
		require.Equal(t, "scheduled", v.Status)
		require.WithinDuration(t, time.Now().Add(time.Hour), v.StartAt, 5*time.Minute)
		r = b.canoctl(t, "runs", "list", "--status", "scheduled", "--workflow", "echo")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, id)
		r = b.canoctl(t, "runs", "cancel", id, "--wait")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "cancelled")
		// Cancelled before its start: it never started.
		r = b.canoctl(t, "runs", "show", id)
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `Was to start:\s+\S.* \(ended before its start\)`, r.stdout)
		require.Regexp(t, `Ended:\s+\S`, r.stdout)
		require.NotContains(t, r.stdout, "Started:")
		r = b.canoctl(t, "runs", "list", "--status", "cancelled", "--workflow", "echo")
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `(?m)^`+id+`\s+echo\s+cancelled\s+\S+\s+\d+\s+-\s`, r.stdout, "no start time in STARTED")

		oneErrorLine(t, b.canoctl(t, "trigger", "echo", "--in", "1h", "--at", "2030-01-01T00:00:00Z"), 2, "--at and --in both say when to start")
		oneErrorLine(t, b.canoctl(t, "trigger", "echo", "--at", "tomorrow"), 2, "is not an RFC 3339 time")
	})

	t.Run("runs cancel --workflow lists the runs, and cancels them with --yes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var ids []string
		for range 3 {
			id, err := b.cl.Trigger(ctx, "echo", &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		listed := func(out string) []string { // the ID column between the header and the summary line
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			require.Regexp(t, `^ID\s+STATUS\s+STATE\s+START$`, lines[0])
			var listed []string
			for _, l := range lines[1 : len(lines)-1] {
				f := strings.Fields(l)
				require.GreaterOrEqual(t, len(f), 4, l) // START may be a date and a time
				require.Equal(t, "scheduled", f[1], l)
				listed = append(listed, f[0])
			}
			return listed
		}
		r := b.canoctl(t, "runs", "cancel", "--workflow", "echo", "--status", "scheduled")
		require.Equal(t, 0, r.code, r.stderr)
		preview := listed(r.stdout)
		require.Subset(t, preview, ids, r.stdout)
		require.True(t, strings.HasSuffix(r.stdout, fmt.Sprintf("%d runs would be cancelled: run again with --yes to cancel them\n", len(preview))), r.stdout)
		r = b.canoctl(t, "runs", "cancel", "--workflow", "echo", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var would struct {
			Workflow    string   `json:"workflow"`
			WouldCancel []string `json:"would_cancel"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &would), r.stdout)
		require.Equal(t, "echo", would.Workflow)
		require.Subset(t, would.WouldCancel, ids)
		for _, id := range ids {
			run, err := b.cl.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, client.RunScheduled, run.Status, "a preview cancels nothing")
		}
		r = b.canoctl(t, "runs", "cancel", "--workflow", "echo", "--status", "scheduled", "--yes", "--wait")
		require.Equal(t, 0, r.code, r.stderr)
		for _, id := range ids {
			require.Contains(t, r.stdout, "run "+id+" cancelled in state ")
			run, err := b.cl.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, client.RunCancelled, run.Status)
		}
		require.Contains(t, r.stdout, fmt.Sprintf("cancel requested for %d runs of echo (follow them with: canoctl runs watch --workflow echo)\n", len(preview)))
		r = b.canoctl(t, "runs", "cancel", "--workflow", "echo", "--status", "scheduled", "--yes", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.JSONEq(t, `{"workflow": "echo", "cancel_requested": []}`, r.stdout)
		r = b.canoctl(t, "runs", "cancel", "--workflow", "echo", "--status", "scheduled")
		require.Equal(t, "no scheduled runs of echo to cancel\n", r.stdout)

		oneErrorLine(t, b.canoctl(t, "runs", "cancel"), 2, "give the ID of the run to cancel, or --workflow NAME")
		oneErrorLine(t, b.canoctl(t, "runs", "cancel", ids[0], "--workflow", "echo"), 2, "give a run ID or --workflow, not both")
		oneErrorLine(t, b.canoctl(t, "runs", "cancel", "--workflow", "echo", "--status", "completed"), 2, "an ended run cannot be cancelled")
	})

	t.Run("runs rerun starts a run like an ended one", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		first, err := b.cl.Run(ctx, "echo", &client.TriggerOpts{Input: json.RawMessage(`{"who": "rerun"}`)})
		require.NoError(t, err)
		r := b.canoctl(t, "runs", "rerun", first.ID, "--wait")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "a rerun of "+first.ID)
		require.Contains(t, r.stdout, "completed in done")
		require.Contains(t, r.stdout, `"who":"rerun"`, "the same input: %s", r.stdout)
		r = b.canoctl(t, "runs", "rerun", first.ID, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var v struct {
			RunID   string `json:"run_id"`
			RerunOf string `json:"rerun_of"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
		require.Equal(t, first.ID, v.RerunOf)
		require.NotEqual(t, first.ID, v.RunID)

		// With a key, a second rerun starts nothing and says so.
		r = b.canoctl(t, "runs", "rerun", first.ID, "--key", "k1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "started run ")
		r = b.canoctl(t, "runs", "rerun", first.ID, "--key", "k1")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "nothing started: run ")
		require.Contains(t, r.stdout, "is already the rerun of "+first.ID+" with idempotency key k1")
		r = b.canoctl(t, "runs", "rerun", first.ID, "--key", "k1", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, `"existing": true`)

		later, err := b.cl.Trigger(ctx, "echo", &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		oneErrorLine(t, b.canoctl(t, "runs", "rerun", later), 1, "is scheduled: rerun a run once it has ended")
		require.NoError(t, b.cl.Cancel(ctx, later, "test"))
		oneErrorLine(t, b.canoctl(t, "runs", "rerun", "nope"), 1, `run "nope" not found`)
	})

	t.Run("runs start starts a scheduled run now", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		hour := time.Now().Add(time.Hour)
		later, err := b.cl.Trigger(ctx, "echo", &client.TriggerOpts{Input: json.RawMessage(`{"who": "early"}`), StartAt: hour})
		require.NoError(t, err)
		r := b.canoctl(t, "runs", "start", later, "--wait")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "run "+later+" of echo, started now (scheduled for "+hour.UTC().Format(time.RFC3339)+")")
		require.Contains(t, r.stdout, "completed in done")
		run, err := b.cl.Get(ctx, later)
		require.NoError(t, err)
		require.True(t, run.StartAt.Before(hour), "its start is when it started")

		other, err := b.cl.Trigger(ctx, "echo", &client.TriggerOpts{StartAt: hour})
		require.NoError(t, err)
		r = b.canoctl(t, "runs", "start", other, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var v struct {
			RunID        string `json:"run_id"`
			ScheduledFor string `json:"scheduled_for"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
		require.Equal(t, other, v.RunID)
		require.Equal(t, hour.UTC().Format(time.RFC3339Nano), v.ScheduledFor)
		_, err = b.cl.Await(ctx, other)
		require.NoError(t, err)

		oneErrorLine(t, b.canoctl(t, "runs", "start", later), 1, "is completed: only a run waiting for its start can be started now")
		oneErrorLine(t, b.canoctl(t, "runs", "start", "nope"), 1, `run "nope" not found`)

		// Every scheduled run of a workflow: listed, then started with --yes.
		var ids []string
		for range 2 {
			id, err := b.cl.Trigger(ctx, "echo", &client.TriggerOpts{StartAt: hour})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		r = b.canoctl(t, "runs", "start", "--workflow", "echo")
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `^ID\s+STATUS\s+STATE\s+START\n`, r.stdout)
		for _, id := range ids {
			require.Regexp(t, `(?m)^`+id+`\s+scheduled\s+echo\s+\S.*$`, r.stdout)
		}
		require.Regexp(t, `\d+ runs would be started now: run again with --yes to start them`, r.stdout)
		r = b.canoctl(t, "runs", "start", "--workflow", "echo", "--yes", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var many struct {
			Workflow       string   `json:"workflow"`
			StartRequested []string `json:"start_requested"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &many))
		require.Equal(t, "echo", many.Workflow)
		require.Subset(t, many.StartRequested, ids)
		for _, id := range ids {
			run, err := b.cl.Await(ctx, id)
			require.NoError(t, err)
			require.True(t, run.StartAt.Before(hour))
		}
		r = b.canoctl(t, "runs", "start", "--workflow", "echo")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "no scheduled runs of echo to start\n", r.stdout)
		oneErrorLine(t, b.canoctl(t, "runs", "start"), 2, "give the ID of the scheduled run to start now, or --workflow NAME")
		oneErrorLine(t, b.canoctl(t, "runs", "start", later, "--workflow", "echo"), 2, "give a run ID or --workflow, not both")
		oneErrorLine(t, b.canoctl(t, "runs", "start", "--workflow", "echo", "--wait"), 2, "--wait follows one run")
	})

	t.Run("workflows show --mermaid", func(t *testing.T) {
		r := b.canoctl(t, "workflows", "show", demo.WorkflowName, "--mermaid", "--runs", "0")
		require.Equal(t, 0, r.code, r.stderr)
		checkMermaid(t, r.stdout)
		golden(t, "parallel_fetch.mmd", versionless(r.stdout))
	})

	t.Run("runs watch an ended run without the capture stream prints its end", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		run, err := b.cl.Run(ctx, "echo", &client.TriggerOpts{Input: map[string]any{"who": "w"}})
		require.NoError(t, err)
		r := b.canoctl(t, "runs", "watch", run.ID)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "keeps no past events to replay")
		require.Contains(t, r.stdout, "-event-capture")
		require.Contains(t, r.stdout, "completed in done")
		require.NotContains(t, r.stdout, "  started", "no replay")

		r = b.canoctl(t, "runs", "watch", "--since", "1h")
		oneErrorLine(t, r, 1, "-event-capture")
	})

	t.Run("runs watch a running run to its end", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		id, err := b.cl.Trigger(ctx, "blocking", nil)
		require.NoError(t, err)
		res := make(chan result, 1)
		go func() { res <- b.canoctl(t, "runs", "watch", id) }()
		natstest.WaitFor(t, 20*time.Second, "the run to start", func() bool {
			run, err := b.cl.Get(ctx, id)
			return err == nil && run.Status == client.RunRunning
		})
		require.NoError(t, b.cl.Cancel(ctx, id, "watched"))
		r := natstest.Recv(t, res, 30*time.Second)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "cancelled")
	})

	t.Run("runs watch an ended run replays its events from the capture stream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		nc, err := nats.Connect(b.url)
		require.NoError(t, err)
		defer nc.Close()
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		require.NoError(t, provision.Ensure(ctx, js, provision.Config{EventCapture: true}))
		run, err := b.cl.Run(ctx, "echo", &client.TriggerOpts{Input: map[string]any{"who": "w"}})
		require.NoError(t, err)
		r := b.canoctl(t, "runs", "watch", run.ID)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "started")
		require.Contains(t, r.stdout, "completed in done")
	})

	t.Run("dlq list and show a refused trigger", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := b.cl.Trigger(ctx, "unregistered", nil)
		require.ErrorIs(t, err, fsm.ErrConfiguration)
		var dls []map[string]any
		natstest.WaitFor(t, 20*time.Second, "the dead letter", func() bool {
			r := b.canoctl(t, "dlq", "list", "--source", "trigger", "--json")
			return r.code == 0 && json.Unmarshal([]byte(r.stdout), &dls) == nil && len(dls) > 0
		})
		seq := fmt.Sprint(dls[0]["seq"])
		r := b.canoctl(t, "dlq", "show", seq)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, `unknown workflow "unregistered"`)
		require.Contains(t, r.stdout, "Payload (")
		require.NotContains(t, r.stdout, "Cano-New-Run-Id", "an engine header")
		require.Regexp(t, `Engine headers:\s+\d+ left out \(--json shows every header\)`, r.stdout)
		r = b.canoctl(t, "dlq", "show", seq, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var dl struct{ Headers map[string]string }
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &dl))
		require.Equal(t, "1", dl.Headers["Cano-New-Run-Id"], "--json keeps every header")
		require.Equal(t, 0, b.canoctl(t, "dlq", "rm", seq).code)
		oneErrorLine(t, b.canoctl(t, "dlq", "rm", seq), 1, "no dead letter at sequence")

		// Many at once: --all lists them, --yes deletes them.
		for range 2 {
			_, err := b.cl.Trigger(ctx, "unregistered", nil)
			require.ErrorIs(t, err, fsm.ErrConfiguration)
		}
		natstest.WaitFor(t, 20*time.Second, "two dead letters", func() bool {
			r := b.canoctl(t, "dlq", "list", "--source", "trigger", "--json")
			return r.code == 0 && json.Unmarshal([]byte(r.stdout), &dls) == nil && len(dls) == 2
		})
		r = b.canoctl(t, "dlq", "rm", "--all", "--source", "trigger")
		require.Equal(t, 0, r.code, r.stderr)
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		require.Len(t, lines, 4, r.stdout)
		require.Regexp(t, `^SEQ\s+TIME\s+SOURCE\s+REASON$`, lines[0])
		for i, d := range dls {
			require.Regexp(t, fmt.Sprintf(`^%v\s+\S.*\s+trigger\s+.*unknown workflow "unregistered"`, d["seq"]), lines[1+i])
		}
		require.Equal(t, "2 dead letters would be deleted: run again with --yes to delete them", lines[3])
		r = b.canoctl(t, "dlq", "rm", "--all", "--source", "trigger", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.JSONEq(t, fmt.Sprintf(`{"would_delete": [%v, %v]}`, dls[0]["seq"], dls[1]["seq"]), r.stdout, "sequences as numbers, as dlq list shows them")
		r = b.canoctl(t, "dlq", "rm", "--all", "--source", "trigger", "--yes")
		require.Equal(t, 0, r.code, r.stderr)
		require.Equal(t, "deleted 2 dead letters\n", r.stdout)
		r = b.canoctl(t, "dlq", "list", "--source", "trigger")
		require.Equal(t, "no dead letters\n", r.stdout)
		r = b.canoctl(t, "dlq", "replay", "--all", "--source", "trigger", "--yes", "--json")
		require.JSONEq(t, `{"replayed": []}`, r.stdout)
		oneErrorLine(t, b.canoctl(t, "dlq", "replay"), 2, "give the SEQ of the dead letter to replay (canoctl dlq list shows them), or --all")
		oneErrorLine(t, b.canoctl(t, "dlq", "rm", seq, "--all"), 2, "give a SEQ or --all, not both")
	})

	t.Run("workflows show --json", func(t *testing.T) {
		r := b.canoctl(t, "workflows", "show", demo.WorkflowName, "--json")
		require.Equal(t, 0, r.code, r.stderr)
		type policy struct {
			Retry      string `json:"retry"`
			MaxRetries int    `json:"max_retries"`
		}
		var wf struct {
			Name   string
			States []struct {
				Name, Kind     string
				Branches       []string
				Join           *struct{ Strategy, State string }
				BranchParams   []map[string]any `json:"branch_params"`
				BranchPolicies []*policy        `json:"branch_policies"`
				Policy         *policy
			}
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &wf))
		require.Equal(t, "split", wf.States[0].Kind)
		require.Len(t, wf.States[0].Branches, 3)
		require.Equal(t, "aggregate", wf.States[0].Join.State)
		require.Len(t, wf.States[0].BranchParams, 3)
		require.EqualValues(t, 2, wf.States[0].BranchParams[1]["source_id"], "each branch's own parameters")
		require.EqualValues(t, 50*time.Millisecond, wf.States[0].BranchParams[1]["delay"])
		require.Len(t, wf.States[0].BranchPolicies, 3)
		require.Equal(t, "exponential", wf.States[0].BranchPolicies[0].Retry, "the default retry policy")
		require.NotNil(t, wf.States[1].Policy, "the aggregate task state's policy")

		r = b.canoctl(t, "workflows", "show", demo.WorkflowName)
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `(?m)^STATE\s+KIND\s+TASK / BRANCHES\s+ATTEMPTS\s+JOIN\s+NEXT`, r.stdout)
		require.Contains(t, r.stdout, `fetch_source {"delay":50000000,"source_id":2}`, "a branch's parameters beside its kind")
		require.Regexp(t, `\d+ retries from \S+ ×\d`, r.stdout, "the attempts' policy")
	})

	t.Run("workflows and workers list", func(t *testing.T) {
		r := b.canoctl(t, "workflows", "list")
		require.Equal(t, 0, r.code)
		require.Contains(t, r.stdout, demo.WorkflowName)
		r = b.canoctl(t, "workers", "list")
		require.Equal(t, 0, r.code)
		require.Contains(t, r.stdout, "w1")
		// As the nats CLI spells them.
		r = b.canoctl(t, "workflows", "ls")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, demo.WorkflowName)
		r = b.canoctl(t, "workflows", "info", demo.WorkflowName)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, demo.WorkflowName)
		r = b.canoctl(t, "workers", "list", "--json")
		var ws []map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &ws))
		require.Equal(t, "w1", ws[0]["id"])
	})

	t.Run("errors are one line with a non-zero exit", func(t *testing.T) {
		oneErrorLine(t, b.canoctl(t, "runs", "show", "nope"), 1, `run "nope" not found`)
		oneErrorLine(t, b.canoctl(t, "runs", "cancel", "nope"), 1, `run "nope" not found`)
		oneErrorLine(t, b.canoctl(t, "workflows", "show", "nope"), 1, `workflow "nope" not found`)
		oneErrorLine(t, b.canoctl(t, "workflows", "show", "parallel_fetc"), 1, "(did you mean "+demo.WorkflowName+"? list workflows with: canoctl workflows list)")
		oneErrorLine(t, b.canoctl(t, "trigger", "nope"), 1, `unknown workflow "nope": no worker has registered it (list workflows with: canoctl workflows list)`)
		oneErrorLine(t, b.canoctl(t, "trigger", "parallel_fech"), 1, "(did you mean "+demo.WorkflowName+"? list workflows with: canoctl workflows list)")
		oneErrorLine(t, b.canoctl(t, "trigger", "echo", "--version", "nope"), 1, "(list its versions with: canoctl workflows show echo)")
		oneErrorLine(t, b.canoctl(t, "runs", "list", "--bogus"), 2, "flag provided but not defined: -bogus")
		oneErrorLine(t, b.canoctl(t, "runs", "list", "--status", "weird"), 2, "not a run status")
		oneErrorLine(t, b.canoctl(t, "trigger", "echo", "--input", "{"), 2, "not valid JSON")
		oneErrorLine(t, b.canoctl(t, "runs", "frob"), 2, "unknown command")
		oneErrorLine(t, b.canoctl(t, "runs", "show", "-s", "nats://127.0.0.1:1", "x"), 1,
			"cannot connect to nats://127.0.0.1:1: connection refused (is a NATS server running there? start one with: go run ./cmd/coordinator -dev, or pass -s URL or set NATS_URL)")
		oneErrorLine(t, b.canoctl(t, "breakers", "reset", "nope"), 1, `breaker "nope" not found`)
		oneErrorLine(t, b.canoctl(t, "flows", "status", "nope"), 1, `flow "nope" not found`)
		oneErrorLine(t, b.canoctl(t, "dlq", "show", "999999"), 1, "no dead letter at sequence 999999")
	})

	t.Run("flows add, list, trigger, rm", func(t *testing.T) {
		r := b.canoctl(t, "flows", "add", "nightly", "--workflow", "echo", "--manual", "--input", `{"who":"flow"}`)
		require.Equal(t, 0, r.code, r.stderr)
		r = b.canoctl(t, "flows", "list", "--json")
		require.Equal(t, 0, r.code)
		var fs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &fs))
		require.Equal(t, "nightly", fs[0]["id"])
		require.Equal(t, 0, b.canoctl(t, "flows", "rm", "nightly").code)
	})

	t.Run("flows add refuses an unknown workflow unless --force", func(t *testing.T) {
		oneErrorLine(t, b.canoctl(t, "flows", "add", "typo", "--workflow", "nosuch", "--every", "1s"), 1,
			`unknown workflow "nosuch": no worker has registered it (list workflows with: canoctl workflows list; add the flow anyway, before its workers have started, with --force)`)
		dir := t.TempDir()
		file := filepath.Join(dir, "flows.json")
		require.NoError(t, os.WriteFile(file, []byte(`{"flows": [
			{"id": "good", "workflow": "echo", "manual": true},
			{"id": "bad", "workflow": "nosuch", "manual": true}]}`), 0o600))
		oneErrorLine(t, b.canoctl(t, "flows", "add", "--file", file), 1, `flow bad: unknown workflow "nosuch"`)
		oneErrorLine(t, b.canoctl(t, "flows", "status", "good"), 1, `flow "good" not found`) // none added

		r := b.canoctl(t, "flows", "add", "early", "--workflow", "nosuch", "--manual", "--force")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "added flow early (nosuch, manual)")
		require.Equal(t, 0, b.canoctl(t, "flows", "rm", "early").code)
	})

	t.Run("flows pause, resume", func(t *testing.T) {
		r := b.canoctl(t, "flows", "add", "hourly", "--workflow", "echo", "--every", "1h")
		require.Equal(t, 0, r.code, r.stderr)
		t.Cleanup(func() { b.canoctl(t, "flows", "rm", "hourly") })
		r = b.canoctl(t, "flows", "pause", "hourly")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "paused flow hourly (resume it with: canoctl flows resume hourly)")
		r = b.canoctl(t, "flows", "list")
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `(?m)^hourly\s+echo\s+every 1h0m0s\s+paused(, running)?\s`, r.stdout)
		r = b.canoctl(t, "flows", "status", "hourly", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var f map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &f))
		require.Equal(t, true, f["paused"])
		require.NotEmpty(t, f["paused_at"])
		r = b.canoctl(t, "flows", "status", "hourly")
		require.Contains(t, r.stdout, "Paused:")

		r = b.canoctl(t, "flows", "resume", "hourly", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		require.JSONEq(t, `{"flow":"hourly","ok":true}`, r.stdout)
		r = b.canoctl(t, "flows", "list", "--json")
		var fs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &fs))
		require.Len(t, fs, 1)
		require.Equal(t, false, fs[0]["paused"])
		require.NotContains(t, b.canoctl(t, "flows", "list").stdout, "paused")
		oneErrorLine(t, b.canoctl(t, "flows", "pause", "nope"), 1, `flow "nope" not found`)
		oneErrorLine(t, b.canoctl(t, "flows", "resume", "nope"), 1, `flow "nope" not found`)
	})

	t.Run("flows status of a cron flow shows its next slot", func(t *testing.T) {
		r := b.canoctl(t, "flows", "add", "nightly", "--workflow", "echo", "--cron", "0 0 2 * * *", "--tz", "Europe/Paris")
		require.Equal(t, 0, r.code, r.stderr)
		t.Cleanup(func() { b.canoctl(t, "flows", "rm", "nightly") })
		r = b.canoctl(t, "flows", "status", "nightly")
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `Next slot:\s+\S+( \S+)? UTC \(02:00:00 Europe/Paris\), in \S+`, r.stdout)
		r = b.canoctl(t, "flows", "status", "nightly", "--json")
		require.Equal(t, 0, r.code, r.stderr)
		var f struct {
			NextSlot time.Time `json:"next_slot"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &f))
		require.True(t, f.NextSlot.After(time.Now()), "the next slot is ahead: %v", f.NextSlot)
		require.LessOrEqual(t, time.Until(f.NextSlot), 25*time.Hour)
		require.Equal(t, 0, b.canoctl(t, "flows", "pause", "nightly").code)
		r = b.canoctl(t, "flows", "status", "nightly")
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `Next slot:\s+none while paused \(resume it with: canoctl flows resume nightly\)`, r.stdout)
	})

	t.Run("nats CLI context", func(t *testing.T) {
		home := t.TempDir()
		dir := filepath.Join(home, ".config", "nats", "context")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "local.json"), []byte(`{"url":"`+b.url+`"}`), 0o600))
		nb := &bundle{env: []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}}
		r := nb.canoctl(t, "workers", "list", "--context", "local")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "w1")
		require.NoError(t, os.WriteFile(filepath.Join(home, ".config", "nats", "context.txt"), []byte("local"), 0o600))
		require.Equal(t, 0, nb.canoctl(t, "workers", "list").code, "the selected context")
		oneErrorLine(t, nb.canoctl(t, "workers", "list", "--context", "nope"), 1, `unknown nats context "nope"`)
	})

	t.Run("version", func(t *testing.T) {
		r := b.canoctl(t, "--version")
		require.Equal(t, 0, r.code)
		require.True(t, strings.HasPrefix(r.stdout, "canoctl "))
	})
}

// versionless drops the version comment, which is a content hash.
func versionless(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.Contains(l, "%% workflow ") {
			lines[i] = "    %% workflow (version left out)"
		}
	}
	return strings.Join(lines, "\n")
}

// TestHelp checks that help asked for goes to stdout with exit 0 (so
// canoctl --help | less shows it), and that no command at all is still a
// usage error on stderr.
func TestHelp(t *testing.T) {
	t.Parallel()
	nb := &bundle{env: []string{"HOME=" + t.TempDir()}} // no server: help needs none
	for _, tc := range []struct {
		args []string
		want string // a line of the usage printed
	}{
		{[]string{"help"}, "Commands:"},
		{[]string{"--help"}, "Commands:"},
		{[]string{"-h"}, "Commands:"},
		{[]string{"runs", "-h"}, "  show ID "},
		{[]string{"runs", "--help"}, "  show ID "},
		{[]string{"runs", "help"}, "  show ID "},
		{[]string{"help", "runs"}, "  show ID "},
		{[]string{"-s", "nats://127.0.0.1:1", "flows", "help"}, "  add [ID] "},
		{[]string{"runs", "show", "-h"}, "Usage: canoctl runs show ID [flags]"},
		{[]string{"help", "trigger"}, "Usage: canoctl trigger WORKFLOW [flags]"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := nb.canoctl(t, tc.args...)
			require.Equal(t, 0, r.code, r.stderr)
			require.Empty(t, r.stderr)
			require.Contains(t, r.stdout, tc.want)
		})
	}

	r := nb.canoctl(t)
	require.Equal(t, 2, r.code)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "Commands:")
	require.Contains(t, r.stderr, "canoctl: missing command")
	oneErrorLine(t, nb.canoctl(t, "runs"), 2, "runs needs a subcommand: list, show, watch, cancel, rerun, start (see canoctl runs -h)")
	oneErrorLine(t, nb.canoctl(t, "runs", "--bogus"), 2, "flag provided but not defined: -bogus")

	// A command's own flags come first; the global ones are named apart.
	r = nb.canoctl(t, "runs", "list", "-h")
	require.Equal(t, 0, r.code, r.stderr)
	own, global, ok := strings.Cut(r.stdout, "\nGlobal flags (every command takes them; canoctl -h describes them):\n")
	require.True(t, ok, r.stdout)
	require.Contains(t, own, "\nFlags:\n  -limit int\n")
	require.NotContains(t, own, "-server")
	require.NotContains(t, own, "-json")
	for _, f := range []string{"-s,", "-server,", "-creds,", "-json,", "-timeout,", "-user"} {
		require.Contains(t, global, f)
	}
	r = nb.canoctl(t, "runs", "show", "-h")
	require.Contains(t, r.stdout, "\nFlags: none of its own.\n")

	// An unknown command names every top-level one, and the one meant.
	all := "use one of breakers, dlq, flows, help, runs, trigger, ui, workers, workflows (canoctl -h)"
	for _, tc := range []struct{ args, want []string }{
		{[]string{"frob"}, []string{`unknown command "frob": ` + all}},
		{[]string{"run", "list"}, []string{`unknown command "run" (did you mean runs?): ` + all}},
		{[]string{"workflow", "list"}, []string{`(did you mean workflows?)`}},
		{[]string{"trigers", "echo"}, []string{`(did you mean trigger?)`}},
		{[]string{"runs", "lsit"}, []string{`unknown command "runs lsit" (did you mean runs list?): runs has list, show`}},
	} {
		r := nb.canoctl(t, tc.args...)
		for _, w := range tc.want {
			oneErrorLine(t, r, 2, w)
		}
	}
}
