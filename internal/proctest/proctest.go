// Package proctest builds the binaries in cmd/ and runs them as real OS
// processes for crash tests: start, stop gracefully, or kill with SIGKILL.
// It may only be imported from tests.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu  sync.Mutex
	built    = map[string]string{} // guarded by buildMu; package → binary
	buildDir string                // guarded by buildMu
)

// Build compiles the main package pkg (e.g. "./cmd/worker", relative to the
// module root) once per test binary and returns the binary's path.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	return BuildAs(tb, pkg, filepath.Base(pkg))
}

// BuildAs is Build with the binary named name: for a main package whose
// last path element says little, such as a module root
// ("github.com/nats-io/nats-server/v2", a dependency in go.mod, as
// "nats-server").
func BuildAs(tb testing.TB, pkg, name string) string {
	tb.Helper()
	return build(tb, pkg, name, "")
}

func build(tb testing.TB, pkg, name, tags string) string {
	tb.Helper()
	key := pkg + "#" + tags
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[key]; ok {
		return bin
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "cano-proctest-")
		if err != nil {
			tb.Fatalf("proctest: %v", err)
		}
		buildDir = d
	}
	root := moduleRoot(tb)
	bin := filepath.Join(buildDir, name)
	args := []string{"build", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("proctest: go build %s: %v\n%s", pkg, err, out)
	}
	built[key] = bin
	return bin
}

// BuildTagged is Build with the build tags tags (comma-separated), for a
// binary the tests need with test-only code compiled in (cmd/worker with
// the fault suite's tasks: "canofaults"). It is cached apart from the
// untagged build.
func BuildTagged(tb testing.TB, pkg, tags string) string {
	tb.Helper()
	return build(tb, pkg, filepath.Base(pkg)+"-"+strings.ReplaceAll(tags, ",", "-"), tags)
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

func moduleRoot(tb testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Proc is a running process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start runs bin with args; its output is kept and shown if the test fails.
// The process is killed in t.Cleanup if still running.
func Start(tb testing.TB, name, bin string, args ...string) *Proc {
	tb.Helper()
	p := &Proc{Name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("proctest: start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("--- output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// Kill sends SIGKILL and waits for the process to die.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Pause sends SIGSTOP: the process stays alive, holding its connections and
// whatever it was given, but runs nothing until Resume. Kill works on a
// paused process.
func (p *Proc) Pause() { _ = p.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume sends SIGCONT to a paused process.
func (p *Proc) Resume() { _ = p.cmd.Process.Signal(syscall.SIGCONT) }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGINT and waits up to timeout for a clean exit.
func (p *Proc) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("proctest: %s did not exit within %s", p.Name, timeout)
	}
}

// Output is everything the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
