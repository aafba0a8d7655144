package cli

import (
	"flag"
	"fmt"
)

// NoArgs reports, for a command that takes flags only (cmd/coordinator,
// cmd/worker), the first argument fs left unparsed. Go's flag parsing
// stops at the first word that is not a flag, so "coordinator dev" would
// otherwise start a plain coordinator and drop every flag after "dev".
func NoArgs(fs *flag.FlagSet) error {
	if fs.NArg() == 0 {
		return nil
	}
	arg := fs.Arg(0)
	if fs.Lookup(arg) != nil {
		return fmt.Errorf("unexpected argument %q: flags start with a dash (did you mean -%s?)", arg, arg)
	}
	return fmt.Errorf("unexpected argument %q: %s takes flags only (see %s -h)", arg, fs.Name(), fs.Name())
}
