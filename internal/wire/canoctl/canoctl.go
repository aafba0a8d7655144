package canoctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/scheduler"
)

// Exit codes of [Main].
const (
	// ExitOK: the command succeeded.
	ExitOK = 0
	// ExitFailed: the command failed (see the error line), or the run
	// trigger --wait waited for did not complete.
	ExitFailed = 1
	// ExitUsage: the command line was wrong.
	ExitUsage = 2
)

// TimeoutDefault bounds connecting and each request when --timeout is not
// given. Waiting commands (trigger --wait, runs watch) are not bounded.
const TimeoutDefault = 10 * time.Second

// IO is where a command reads and writes, and its environment.
type IO struct {
	// Stdout receives results; Stderr the error line and usage.
	Stdout, Stderr io.Writer
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Now is the clock for relative times; nil means time.Now.
	Now func() time.Time
}

// common are the flags every command accepts.
type common struct {
	nats    cli.NATSConfig
	prefix  string
	timeout time.Duration
	json    bool
	version bool
}

// env is what a command runs with.
type env struct {
	io      IO
	c       *common
	nc      *nats.Conn
	cl      *client.Client
	flows   *scheduler.Client
	out     io.Writer
	nowFunc func() time.Time
}

func (e *env) now() time.Time { return e.nowFunc() }

// reqCtx bounds one request with --timeout.
func (e *env) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.c.timeout)
}

// command is one leaf command.
type command struct {
	path  string // "runs show"
	args  string // "ID"
	short string
	// nargs is the number of positional arguments: exact, or at most
	// -nargs-1 when negative (-2 means 0 or 1).
	nargs int
	flags func(fs *flag.FlagSet) any
	run   func(ctx context.Context, e *env, args []string, opts any) error
	// offline commands need no connection.
	offline bool
	// long commands (a dashboard, a watch) go on through a request the
	// server refuses for the user's permissions — one of their optional
	// requests (a hint, a replay) may be — and name the refusal only if
	// they fail; other commands end at the refusal (see run).
	long bool
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// commands lists every leaf command, in help order.
func commands() []command {
	var cs []command
	cs = append(cs, triggerCommands()...)
	cs = append(cs, runCommands()...)
	cs = append(cs, workflowCommands()...)
	cs = append(cs, flowCommands()...)
	cs = append(cs, breakerCommands()...)
	cs = append(cs, workerCommands()...)
	cs = append(cs, dlqCommands()...)
	cs = append(cs, uiCommand())
	return cs
}

// Version returns canoctl's module version ("(devel)" for a local build).
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// Main runs canoctl with args (without the program name) and returns the
// exit code. It blocks until the command is done or ctx ends (then a
// waiting command returns its outcome so far).
func Main(ctx context.Context, args []string, io IO) int {
	if io.LookupEnv == nil {
		io.LookupEnv = os.LookupEnv
	}
	if io.Now == nil {
		io.Now = time.Now
	}
	err := run(ctx, args, io)
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	fmt.Fprintln(io.Stderr, "canoctl: "+oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailed
}

// oneLine joins the lines of a multi-line error message.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// valueFlags are the common flags that take a value, so the command
// words can be found before the command's own flag set exists.
var valueFlags = map[string]bool{
	"s": true, "server": true, "creds": true, "nkey": true, "user": true, "password": true,
	"token": true, "tlscert": true, "tlskey": true, "tlsca": true, "context": true,
	"prefix": true, "timeout": true,
}

// subAliases are the nats CLI's words for subcommands canoctl spells out:
// "canoctl runs ls" is "canoctl runs list", as "nats stream ls" is.
var subAliases = map[string]string{"ls": "list", "info": "show"}

// splitWords finds the command words (the first two non-flag arguments,
// or one for a command without subcommands) and returns them with the
// remaining arguments.
func splitWords(args []string, groups map[string]bool) (words, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			rest = append(rest, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && valueFlags[name] && len(words) == 0 && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
			continue
		}
		want := 1
		if len(words) > 0 && groups[words[0]] {
			want = 2
		}
		if len(words) < want {
			words = append(words, a)
			continue
		}
		rest = append(rest, a)
	}
	return words, rest
}

// parseInterleaved parses flags wherever they are among the positional
// arguments, which it returns in order.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseFlags parses args with fs (flags anywhere among the positional
// arguments, which it returns). On -h or --help it writes usage to stdout
// and returns flag.ErrHelp; other errors come back without the flag
// package's own output, for the caller's one error line.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, usage func(io.Writer)) ([]string, error) {
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
	}
	return pos, err
}

// registerCommon registers the flags every command takes; --version only
// without a command (some commands have their own --version).
func registerCommon(fs *flag.FlagSet, c *common, top bool) {
	c.nats.RegisterFlags(fs)
	fs.StringVar(&c.prefix, "prefix", c.prefix, "prefix of every subject, stream and bucket")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "bound on connecting and on each request")
	fs.BoolVar(&c.json, "json", c.json, "print JSON (one document, or one line per event) instead of text")
	if top {
		fs.BoolVar(&c.version, "version", false, "print canoctl's version and exit")
	}
}

func run(ctx context.Context, args []string, cio IO) error {
	cs := commands()
	groups := map[string]bool{}
	byPath := map[string]command{}
	for _, c := range cs {
		if g, _, ok := strings.Cut(c.path, " "); ok {
			groups[g] = true
		}
		byPath[c.path] = c
	}
	words, rest := splitWords(args, groups)
	// "canoctl help [COMMAND]" is "canoctl [COMMAND] -h"; so is
	// "canoctl GROUP help".
	switch {
	case len(words) > 0 && words[0] == "help":
		words, rest = splitWords(append(rest, "-h"), groups)
	case len(words) == 2 && groups[words[0]] && words[1] == "help":
		words, rest = words[:1], append(rest, "-h")
	}
	c := &common{prefix: "cano", timeout: TimeoutDefault}

	if len(words) == 0 {
		fs := flag.NewFlagSet("canoctl", flag.ContinueOnError)
		registerCommon(fs, c, true)
		if _, err := parseFlags(fs, rest, cio.Stdout, func(w io.Writer) { printUsage(w, cs, fs) }); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usagef("%v (see canoctl -h)", err)
		}
		if c.version {
			fmt.Fprintln(cio.Stdout, "canoctl", Version())
			return nil
		}
		printUsage(cio.Stderr, cs, fs)
		return usagef("missing command (see the list above)")
	}
	if len(words) == 2 {
		if full, ok := subAliases[words[1]]; ok {
			if _, ok := byPath[words[0]+" "+full]; ok {
				words[1] = full
			}
		}
	}
	path := strings.Join(words, " ")
	cmd, ok := byPath[path]
	if !ok {
		if groups[words[0]] {
			var subs []command
			for _, x := range cs {
				if g, _, _ := strings.Cut(x.path, " "); g == words[0] {
					subs = append(subs, x)
				}
			}
			names := make([]string, len(subs))
			for i, x := range subs {
				_, names[i], _ = strings.Cut(x.path, " ")
			}
			if len(words) == 1 {
				fs := flag.NewFlagSet("canoctl "+words[0], flag.ContinueOnError)
				registerCommon(fs, c, false)
				if _, err := parseFlags(fs, rest, cio.Stdout, func(w io.Writer) { printGroupUsage(w, words[0], subs) }); err != nil {
					if errors.Is(err, flag.ErrHelp) {
						return err
					}
					return usagef("%s: %v (see canoctl %s -h)", words[0], err, words[0])
				}
				return usagef("%s needs a subcommand: %s (see canoctl %s -h)", words[0], strings.Join(names, ", "), words[0])
			}
			return usagef("unknown command %q%s: %s has %s", path, didYouMean(words[1], names, words[0]+" "), words[0], strings.Join(names, ", "))
		}
		names := topWords(cs)
		return usagef("unknown command %q%s: use one of %s (canoctl -h)", words[0], didYouMean(words[0], names, ""), strings.Join(names, ", "))
	}

	fs := flag.NewFlagSet("canoctl "+cmd.path, flag.ContinueOnError)
	registerCommon(fs, c, false)
	var opts any
	if cmd.flags != nil {
		opts = cmd.flags(fs)
	}
	usage := func(w io.Writer) { printCommandUsage(w, cmd, fs) }
	pos, err := parseFlags(fs, rest, cio.Stdout, usage)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return usagef("%s: %v (see canoctl %s -h)", cmd.path, err, cmd.path)
	}
	switch {
	case cmd.nargs >= 0 && len(pos) != cmd.nargs:
		return usagef("%s takes %s (got %d arguments; see canoctl %s -h)", cmd.path, argWords(cmd), len(pos), cmd.path)
	case cmd.nargs < 0 && len(pos) > -cmd.nargs-1:
		return usagef("%s takes at most %s (see canoctl %s -h)", cmd.path, argWords(cmd), cmd.path)
	}
	if c.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	c.nats.ApplyEnv(fs, cio.LookupEnv)
	e := &env{io: cio, c: c, out: cio.Stdout, nowFunc: cio.Now}
	// A request the server refuses for the user's permissions is never
	// answered: without this, the command would wait out --timeout and
	// say "context deadline exceeded". The refusal ends it at once, and
	// is its error.
	ctx, end := context.WithCancelCause(ctx)
	defer end(nil)
	var refusal atomic.Pointer[permissionError]
	refused := func(pe *permissionError) {
		refusal.CompareAndSwap(nil, pe)
		if !cmd.long {
			end(pe)
		}
	}
	if !cmd.offline {
		if err := c.nats.ApplyContext(cio.LookupEnv); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		c.nats.Name = "canoctl"
		nc, err := cli.Connect(cctx, c.nats, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				refused(&permissionError{err: err, user: c.nats.User})
			}
		}))
		cancel()
		if err != nil {
			return connectHint(err)
		}
		defer nc.Close()
		e.nc = nc
		e.cl, err = client.New(nc, client.Config{Prefix: c.prefix, Timeout: c.timeout})
		if err != nil {
			return err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		e.flows, err = scheduler.NewClient(js, scheduler.ClientConfig{Prefix: c.prefix, Timeout: c.timeout})
		if err != nil {
			return err
		}
	}
	err = cmd.run(ctx, e, pos, opts)
	if pe := refusal.Load(); err != nil && pe != nil {
		if cmd.long {
			return fmt.Errorf("%w (the server refused a request before: %w)", err, pe)
		}
		return pe
	}
	return err
}

// permissionError is a request the server refused for the user's
// permissions.
type permissionError struct {
	err  error
	user string
}

func (p *permissionError) Error() string {
	who := "this connection's user"
	if p.user != "" {
		who = "user " + strconv.Quote(p.user)
	}
	return fmt.Sprintf("%v: %s may not do this; connect as a user that may (--user and --password, or --creds; deploy/nats/accounts.conf says what each of its users may do)", p.err, who)
}

func (p *permissionError) Unwrap() error { return p.err }

func argWords(c command) string {
	if c.args == "" {
		return "no arguments"
	}
	return c.args
}

func printUsage(w io.Writer, cs []command, fs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: canoctl [flags] COMMAND [ARGS] [flags]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range cs {
		fmt.Fprintf(w, "  %-38s %s\n", strings.TrimSpace(c.path+" "+c.args), c.short)
	}
	fmt.Fprintln(w, "\n  (ls and info are accepted for list and show, as the nats CLI spells them)")
	fmt.Fprintln(w, "\nFlags (accepted by every command; canoctl COMMAND -h for its own):")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// printCommandUsage writes a command's usage: its own flags first, then
// the names of the flags every command takes (canoctl -h describes them).
func printCommandUsage(w io.Writer, cmd command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: canoctl %s [flags]\n\n%s\n", strings.TrimSpace(cmd.path+" "+cmd.args), cmd.short)
	global := flag.NewFlagSet("", flag.ContinueOnError)
	registerCommon(global, &common{}, false)
	own := flag.NewFlagSet("", flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if global.Lookup(f.Name) == nil {
			own.Var(f.Value, f.Name, f.Usage)
			own.Lookup(f.Name).DefValue = f.DefValue // as registered, not as parsed before -h
		}
	})
	if !hasFlags(own) {
		fmt.Fprintln(w, "\nFlags: none of its own.")
	} else {
		fmt.Fprintln(w, "\nFlags:")
		own.SetOutput(w)
		own.PrintDefaults()
	}
	var names []string
	global.VisitAll(func(f *flag.Flag) { names = append(names, "-"+f.Name) })
	fmt.Fprintln(w, "\nGlobal flags (every command takes them; canoctl -h describes them):")
	line := " "
	for i, n := range names {
		if i < len(names)-1 {
			n += ","
		}
		if len(line)+1+len(n) > 78 {
			fmt.Fprintln(w, line)
			line = " "
		}
		line += " " + n
	}
	fmt.Fprintln(w, line)
}

// hasFlags reports whether fs defines any flag.
func hasFlags(fs *flag.FlagSet) bool {
	some := false
	fs.VisitAll(func(*flag.Flag) { some = true })
	return some
}

// topWords are the first words of the commands, sorted, with help.
func topWords(cs []command) []string {
	seen := map[string]bool{"help": true}
	names := []string{"help"}
	for _, c := range cs {
		if w, _, _ := strings.Cut(c.path, " "); !seen[w] {
			seen[w] = true
			names = append(names, w)
		}
	}
	sort.Strings(names)
	return names
}

// connectHint adds what to do to a failure to reach the server (not to
// one the server refused for its credentials, which says what to check).
func connectHint(err error) error {
	var ce *cli.ConnectError
	if errors.As(err, &ce) && !ce.Auth {
		return fmt.Errorf("%w (%s)", err, cli.NoServerHint)
	}
	return err
}

func printGroupUsage(w io.Writer, group string, subs []command) {
	fmt.Fprintf(w, "Usage: canoctl %s SUBCOMMAND [ARGS] [flags]\n\nSubcommands:\n", group)
	for _, c := range subs {
		_, sub, _ := strings.Cut(c.path, " ")
		fmt.Fprintf(w, "  %-30s %s\n", strings.TrimSpace(sub+" "+c.args), c.short)
	}
	fmt.Fprintf(w, "\nRun canoctl %s SUBCOMMAND -h for its flags, canoctl -h for the flags every command takes.\n", group)
}
