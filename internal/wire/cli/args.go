package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ParseFlags parses the flags of a command that takes flags only
// (cmd/coordinator, cmd/worker; fs made with flag.ContinueOnError). -h
// prints every flag and reports exit code 0. A mistake — a flag that is
// not defined, a bad value, a stray argument — is told in one line
// with where to look, not followed by the whole flag list, and reports
// exit code 2. ok is true when the command should go on.
func ParseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, for -h only
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stderr, "Usage of %s:\n", fs.Name())
		fs.PrintDefaults()
		return 0, false
	case err != nil:
		// The flag package has printed the error itself.
		fmt.Fprintf(stderr, "run %s -h to list its flags\n", fs.Name())
		return 2, false
	}
	if err := noArgs(fs); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 2, false
	}
	return 0, true
}

// noArgs reports, for a command that takes flags only, the first argument
// fs left unparsed. Go's flag parsing stops at the first word that is not
// a flag, so "coordinator dev" would otherwise start a plain coordinator
// and drop every flag after "dev".
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() == 0 {
		return nil
	}
	arg := fs.Arg(0)
	if fs.Lookup(arg) != nil {
		return fmt.Errorf("unexpected argument %q: flags start with a dash (did you mean -%s?)", arg, arg)
	}
	return fmt.Errorf("unexpected argument %q: %s takes flags only (see %s -h)", arg, fs.Name(), fs.Name())
}
