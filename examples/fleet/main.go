// Fleet runs Cano as a deployment does, in separate OS processes: it builds
// cmd/coordinator and cmd/worker into a temporary directory, starts a
// coordinator and three workers (hosting the demo workflows) against one
// NATS server, triggers runs of the demo "sleepy" workflow, SIGKILLs one
// worker while it has tasks in hand, and checks that every run still
// completes with its exact path: the dead worker's tasks are redelivered
// to the others once their lease (-ack-wait) runs out.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cano-nats/cano/examples/internal/local"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/embedded"
)

const (
	// workflow is the demo workflow run: a 300 ms task, then a no-op.
	workflow = "sleepy"
	// runs is how many runs are triggered.
	runs = 30
	// victim is the worker killed.
	victim = "worker-2"
)

// path is every sleepy run's exact path.
var path = []string{"sleep", "after", "done"}

var workers = []string{"worker-1", "worker-2", "worker-3"}

func main() { local.Main(run) }

func run(ctx context.Context, out io.Writer, url string) error {
	dir, err := os.MkdirTemp("", "cano-fleet-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	if err := build(ctx, dir); err != nil {
		return err
	}
	fmt.Fprintln(out, "built cmd/coordinator and cmd/worker")

	if url == "" {
		srv, err := embedded.Start(embedded.Config{StoreDir: filepath.Join(dir, "data"), Port: -1})
		if err != nil {
			return fmt.Errorf("embedded NATS server: %w", err)
		}
		defer srv.Stop()
		url = srv.ClientURL()
	}
	nc, err := local.Connect(url, "cano-example-fleet")
	if err != nil {
		return fmt.Errorf("connect to %s (is a NATS server with JetStream running there?): %w", url, err)
	}
	defer nc.Close()
	cl, err := client.New(nc, client.Config{})
	if err != nil {
		return err
	}

	var procs fleet
	defer procs.stop()
	if err := procs.start(filepath.Join(dir, "coordinator"), "coordinator",
		"-s", url, "-log-level", "warn", "-ack-wait", "2s"); err != nil {
		return err
	}
	for _, id := range workers {
		// Two tasks at a time each, so the work outlasts the kill; a
		// 2 s lease, so the dead worker's tasks move on quickly.
		if err := procs.start(filepath.Join(dir, "worker"), id,
			"-s", url, "-log-level", "warn", "-id", id, "-concurrency", "2", "-ack-wait", "2s"); err != nil {
			return err
		}
	}
	if err := waitWorkers(ctx, cl); err != nil {
		return fmt.Errorf("%w\n%s", err, procs.output())
	}
	fmt.Fprintf(out, "started a coordinator and %s\n", strings.Join(workers, ", "))

	started, err := cl.Events(ctx, &client.EventFilter{Workflow: workflow, Types: []client.EventType{client.EventStarted}})
	if err != nil {
		return err
	}
	defer started.Stop()
	ids := make([]string, runs)
	for i := range ids {
		if ids[i], err = cl.Trigger(ctx, workflow, nil); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "triggered %d runs of %s\n", runs, workflow)

	// Kill once a few runs are under way: every worker has tasks in hand.
	for i := 0; i < 6; i++ {
		if _, err := started.Next(ctx); err != nil {
			return fmt.Errorf("waiting for runs to start: %w\n%s", err, procs.output())
		}
	}
	if err := procs.kill(victim); err != nil {
		return err
	}
	fmt.Fprintf(out, "killed %s (SIGKILL) with runs in flight\n", victim)

	completed := 0
	for _, id := range ids {
		r, err := cl.Await(ctx, id)
		if err != nil {
			return fmt.Errorf("run %s: %w\n%s", id, err, procs.output())
		}
		if r.Status != client.RunCompleted || !slices.Equal(r.Path, path) {
			return fmt.Errorf("run %s: %s via %s, want completed via %s", id, r.Status,
				strings.Join(r.Path, " → "), strings.Join(path, " → "))
		}
		completed++
	}
	fmt.Fprintf(out, "%d of %d runs completed, each via %s\n", completed, runs, strings.Join(path, " → "))
	return nil
}

// build compiles the coordinator and worker commands into dir.
func build(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"github.com/cano-nats/cano/cmd/coordinator", "github.com/cano-nats/cano/cmd/worker")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build the coordinator and worker (run the example from the cano module): %w\n%s", err, stderr.String())
	}
	return nil
}

// waitWorkers polls the worker registry until every worker is registered.
func waitWorkers(ctx context.Context, cl *client.Client) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		infos, err := cl.Workers(ctx)
		if err == nil {
			n := 0
			for _, w := range infos {
				if slices.Contains(workers, w.ID) {
					n++
				}
			}
			if n == len(workers) {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the workers to register: %w", ctx.Err())
		}
	}
}

// fleet is the processes started, by name.
type fleet struct {
	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
}

func (f *fleet) start(bin, name string, args ...string) error {
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	f.procs = append(f.procs, p)
	return nil
}

func (f *fleet) kill(name string) error {
	for _, p := range f.procs {
		if p.name == name {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				return fmt.Errorf("kill %s: %w", name, err)
			}
			<-p.done
			return nil
		}
	}
	return errors.New("no process named " + name)
}

// stop asks every process still running to stop (SIGTERM), then kills
// those that have not within 10 s.
func (f *fleet) stop() {
	for _, p := range f.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(10 * time.Second)
	for _, p := range f.procs {
		select {
		case <-p.done:
		case <-deadline:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// output is every process's log, for an error report.
func (f *fleet) output() string {
	var b strings.Builder
	for _, p := range f.procs {
		if s := p.out.String(); s != "" {
			fmt.Fprintf(&b, "--- %s:\n%s", p.name, s)
		}
	}
	return b.String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
