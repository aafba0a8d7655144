package canoctl

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/cano-nats/cano/internal/wire/dashboard"
	"github.com/cano-nats/cano/pkg/client"
)

type uiOpts struct {
	addr, token, user, password string
	indexMaxRuns                int
}

// uiCommand serves the web dashboard from this process, on the
// connection canoctl made: the same pages the coordinator serves with -http.
func uiCommand() command {
	return command{path: "ui", short: "serve the web dashboard until interrupted", nargs: 0, long: true,
		flags: func(fs *flag.FlagSet) any {
			o := &uiOpts{}
			fs.StringVar(&o.addr, "addr", dashboard.AddrDefault, "listen `address`; other than loopback it needs --http-token or --http-user/--http-password")
			fs.StringVar(&o.token, "http-token", os.Getenv("CANO_HTTP_TOKEN"), "access `token` (env CANO_HTTP_TOKEN)")
			fs.StringVar(&o.user, "http-user", "", "basic-auth `user`")
			fs.StringVar(&o.password, "http-password", os.Getenv("CANO_HTTP_PASSWORD"), "basic-auth `password` (env CANO_HTTP_PASSWORD)")
			fs.IntVar(&o.indexMaxRuns, "http-index-max-runs", 0, fmt.Sprintf("keep the newest `N` runs in the runs page's index (0: the default, %d; -1: no cap)", client.RunIndexMaxRunsDefault))
			return o
		},
		run: runUI}
}

func runUI(ctx context.Context, e *env, _ []string, o any) error {
	opts := o.(*uiOpts)
	srv, err := dashboard.New(e.nc, dashboard.Config{Addr: opts.addr, Token: opts.token, User: opts.user,
		Password: opts.password, Prefix: e.c.prefix, IndexMaxRuns: opts.indexMaxRuns})
	if err != nil {
		return fmt.Errorf("ui: %w", dashboard.FlagError(err, "--", "addr", opts.addr))
	}
	if err := srv.Start(ctx); err != nil {
		return dashboard.FlagError(err, "--", "addr", opts.addr)
	}
	fmt.Fprintf(e.out, "dashboard: open http://%s/ (Ctrl-C stops it)\n", srv.Addr())
	<-ctx.Done()
	return srv.Stop(context.WithoutCancel(ctx))
}
