// Command worker runs a Cano worker hosting the demo workflow's tasks.
// Users build their own worker binaries the same way with package worker.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cano-nats/cano/internal/gcfloor"
	"github.com/cano-nats/cano/internal/wire/app"
	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/internal/wire/otelenv"
	"github.com/cano-nats/cano/pkg/worker"
)

func main() {
	var cfg app.WorkerConfig
	var logCfg cli.LogConfig
	var info app.InfoFlags
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	cfg.NATS.RegisterFlags(fs)
	logCfg.RegisterFlags(fs)
	info.RegisterFlags(fs, true)
	fs.StringVar(&cfg.Prefix, "prefix", "cano", "prefix of every subject, stream and bucket")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "tasks run at once (0: default)")
	fs.StringVar(&cfg.ID, "id", "", "worker id in results and logs (default host-pid)")
	fs.DurationVar(&cfg.AckWait, "ack-wait", 0, "lease of a task in hand: a dead worker's task runs elsewhere within it; live tasks heartbeat (0: default "+worker.AckWaitDefault.String()+")")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve /healthz, /readyz and /metrics on this `address`, host:port (default: none)")
	provisionFlag := fs.Bool("provision", true, "create or update the streams and buckets (false: wait for a coordinator to create them, for a NATS user that may not manage streams)")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "graceful shutdown deadline")
	if code, ok := cli.ParseFlags(fs, os.Args[1:], os.Stderr); !ok {
		os.Exit(code)
	}
	cfg.NATS.ApplyEnv(fs, nil)
	if exit, code := info.Run(context.Background(), os.Stdout, os.Stderr); exit {
		os.Exit(code)
	}
	cfg.NoProvision = !*provisionFlag

	log, err := cli.NewLogger(os.Stderr, logCfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	// The collector's floor (internal/gcfloor), unless GOGC or GOMEMLIMIT is set.
	if gcfloor.Set() {
		log.Debug("collector floor set: no cycle below this heap size unless GOGC or GOMEMLIMIT says otherwise", "floor_mib", gcfloor.Floor>>20)
	}
	// Tracing is off unless the OTEL_* variables turn it on.
	tracing, err := otelenv.Start(context.Background(), log, otelenv.Options{Service: "cano-worker"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	cfg.Tracing = tracing.TracerProvider()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = app.RunWorker(ctx, log, cfg, *shutdown)
	stop()
	if ferr := tracing.Shutdown(otelenv.FlushTimeout); ferr != nil {
		log.Warn(ferr.Error())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}
