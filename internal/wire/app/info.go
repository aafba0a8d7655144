package app

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/cano-nats/cano/internal/version"
	"github.com/cano-nats/cano/internal/wire/health"
)

// InfoFlags are the flags that answer and exit instead of running: -version
// on every binary, and -healthcheck URL, the container health check of an
// image without a shell or curl.
type InfoFlags struct {
	// Version prints the version line and exits 0.
	Version bool
	// HealthCheck GETs this URL and exits 0 on 200, 1 otherwise.
	HealthCheck string
}

// RegisterFlags registers -version and, when withHealthCheck, -healthcheck.
func (f *InfoFlags) RegisterFlags(fs *flag.FlagSet, withHealthCheck bool) {
	fs.BoolVar(&f.Version, "version", false, "print the version and exit")
	if withHealthCheck {
		fs.StringVar(&f.HealthCheck, "healthcheck", "", "GET `url` (e.g. http://127.0.0.1:9090/readyz), exit 0 on 200 and 1 otherwise, and do nothing else: the health check of a container without a shell")
	}
}

// Run handles the flags that were given: it reports whether the process
// should exit now, and with which code.
func (f *InfoFlags) Run(ctx context.Context, stdout, stderr io.Writer) (exit bool, code int) {
	switch {
	case f.Version:
		fmt.Fprintln(stdout, version.String())
		return true, 0
	case f.HealthCheck != "":
		if err := health.Probe(ctx, f.HealthCheck); err != nil {
			fmt.Fprintln(stderr, err)
			return true, 1
		}
		return true, 0
	}
	return false, 0
}
