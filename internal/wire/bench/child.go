package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// child is an engine process (a worker or a coordinator) started by the
// harness: this binary re-executed with -child.
type child struct {
	role  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	// lines are the child's replies on its stdout after "ready"
	// (memReply lines); closed when its stdout ends.
	lines chan string
}

// ChildArg is the flag that turns canobench into an engine child process.
const ChildArg = "-child"

// startChild re-executes this binary as an engine child for role and waits
// until it reports that it has started.
func startChild(ctx context.Context, role, url string, cfg Config) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var sizes []string
	for _, n := range cfg.Splits {
		sizes = append(sizes, strconv.Itoa(n))
	}
	args := []string{ChildArg, role, "-s", url, "-splits", strings.Join(sizes, ",")}
	if cfg.CPUProfile != "" {
		args = append(args, "-cpuprofile", cfg.CPUProfile+"."+role)
	}
	if cfg.RunRetention != 0 {
		args = append(args, "-retention", cfg.RunRetention.String())
	}
	if cfg.DeferStart != 0 {
		args = append(args, "-defer-start", cfg.DeferStart.String())
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{role: role, cmd: cmd, stdin: stdin, done: make(chan struct{}), lines: make(chan string, 4)}
	ready := make(chan error, 1)
	go func() {
		defer close(c.lines)
		r := bufio.NewReader(stdout)
		line, err := r.ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("%s child: %s", role, strings.TrimSpace(line))
		}
		ready <- err
		for err == nil {
			if line, err = r.ReadString('\n'); err == nil {
				select {
				case c.lines <- strings.TrimSpace(line):
				default: // nobody asked
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(c.done) }()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("%s child did not start within 30 s", role)
	}
	if err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// stop closes the child's stdin (it stops its engine and exits) and waits
// for it, killing it after 10 s.
func (c *child) stop() {
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// rssMB is the child's resident set size.
func (c *child) rssMB() float64 { return procRSSMB(strconv.Itoa(c.cmd.Process.Pid)) }

// cpu is the child's CPU time (user and system) so far.
func (c *child) cpu() time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at
	// field 3; utime and stime are fields 14 and 15, in clock ticks
	// (USER_HZ, 100 on Linux).
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100)
}

// memAsk, a line on a child's stdin, asks it for its Go heap: it replies
// with a memReply line.
const (
	memAsk   = "mem"
	memReply = "mem "
)

// allocAsk, a line on a child's stdin, asks it how many heap objects it
// has allocated since it started: it replies with an allocReply line. No
// collection is forced, so asking costs the child nothing worth counting.
const (
	allocAsk   = "allocs"
	allocReply = "allocs "
)

// heapMB asks the child for its Go heap after a garbage collection it
// forces: live is the heap's live objects (what a leak grows), free the
// heap memory the Go runtime holds free for reuse but has not returned to
// the operating system yet (part of the RSS: it follows the peak of the
// heap under load and shrinks as the runtime's scavenger returns it).
func (c *child) heapMB() (live, free float64, err error) {
	v, err := c.ask(memAsk, memReply, "its heap")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(v)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("%s child: unreadable heap reply %q", c.role, v)
	}
	l, _ := strconv.ParseFloat(f[0], 64)
	fr, _ := strconv.ParseFloat(f[1], 64)
	return l / (1 << 20), fr / (1 << 20), nil
}

// allocs asks the child how many heap objects it has allocated so far.
func (c *child) allocs() (uint64, error) {
	v, err := c.ask(allocAsk, allocReply, "its allocations")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
}

// ask writes question on the child's stdin and returns the rest of its
// first reply line that starts with prefix, waiting at most 30 s.
func (c *child) ask(question, prefix, what string) (string, error) {
	if _, err := io.WriteString(c.stdin, question+"\n"); err != nil {
		return "", err
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				return "", fmt.Errorf("%s child exited", c.role)
			}
			if v, found := strings.CutPrefix(line, prefix); found {
				return v, nil
			}
		case <-t.C:
			return "", fmt.Errorf("%s child did not report %s within 30 s", c.role, what)
		}
	}
}

// childAllocs is the child side of allocs.
func childAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// childHeap is the child side of heapMB, in bytes.
func childHeap() (live, free uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// ChildMain is an engine child's main: args are what startChild passes,
// from ChildArg on. It reads them (here, beside where they are written),
// writes the CPU profile they ask for, runs RunChild and returns the exit
// code. canobench runs it, and so does a test binary standing in for it.
func ChildMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cfg Config
	fs := flag.NewFlagSet("canobench "+ChildArg, flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String(strings.TrimPrefix(ChildArg, "-"), "", "the engine to run: worker, coordinator, cmd-worker or cmd-coordinator")
	fs.StringVar(&cfg.URL, "s", "", "NATS url")
	splits := fs.String("splits", "", "split sizes")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file`")
	fs.DurationVar(&cfg.RunRetention, "retention", 0, "coordinator RunRetention")
	fs.DurationVar(&cfg.DeferStart, "defer-start", 0, "coordinator DeferStart")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, v := range strings.Split(*splits, ",") {
		if n, err := strconv.Atoi(v); err == nil {
			cfg.Splits = append(cfg.Splits, n)
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "canobench:", err)
			return 2
		}
		defer func() { _ = f.Close() }()
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := RunChild(ctx, *role, cfg, stdin, stdout); err != nil {
		fmt.Fprintln(stderr, "canobench:", err)
		return 1
	}
	return 0
}

// RunChild is the child side: it starts role's engine on cfg.URL, prints
// "ready", answers memAsk and allocAsk lines, and runs until its stdin is
// closed (or ctx ends).
func RunChild(ctx context.Context, role string, cfg Config, stdin io.Reader, stdout io.Writer) error {
	stop, err := startEngine(ctx, role, cfg.URL, cfg)
	if err != nil {
		fmt.Fprintln(stdout, err)
		return err
	}
	defer stop()
	fmt.Fprintln(stdout, "ready")
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			switch sc.Text() {
			case memAsk:
				live, free := childHeap()
				fmt.Fprintf(stdout, "%s%d %d\n", memReply, live, free)
			case allocAsk:
				fmt.Fprintf(stdout, "%s%d\n", allocReply, childAllocs())
			}
		}
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	return nil
}
