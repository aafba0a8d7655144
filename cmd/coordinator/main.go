// Command coordinator runs a Cano coordinator. With -dev it also starts an
// embedded NATS server with JetStream, a demo worker, and a demo run every
// few seconds: go run ./cmd/coordinator -dev
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
	"github.com/cano-nats/cano/pkg/client"
)

func main() {
	var cfg app.CoordinatorConfig
	var logCfg cli.LogConfig
	var info app.InfoFlags
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	cfg.NATS.RegisterFlags(fs)
	logCfg.RegisterFlags(fs)
	info.RegisterFlags(fs, true)
	fs.BoolVar(&cfg.Dev, "dev", false, "dev mode: embedded NATS, coordinator, demo worker and demo runs in one process")
	fs.StringVar(&cfg.DataDir, "data", "./data", "dev mode: JetStream data `directory`")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:4222", "dev mode: embedded NATS listen `address`")
	fs.DurationVar(&cfg.DemoEvery, "demo-every", 5*time.Second, "dev mode: run the demo workflow this often (0 disables)")
	fs.StringVar(&cfg.Prefix, "prefix", "cano", "prefix of every subject, stream and bucket")
	fs.IntVar(&cfg.Replicas, "replicas", 0, "stream and bucket replicas, 1 or 3 (0: 1 for new ones, keep existing ones as they are)")
	fs.IntVar(&cfg.Shards, "shards", 0, "transition goroutines (0: default)")
	fs.DurationVar(&cfg.DeferStart, "defer-start", 0, "deferred start: write a requested run's record with its first result, one store write fewer per run; a run with no result within this long gets its record then; its trigger request is answered once the record is written (0: off; at most 1s)")
	fs.DurationVar(&cfg.AckWait, "ack-wait", 0, "redelivery deadline of an input a dead coordinator held (0: default 30s)")
	fs.DurationVar(&cfg.RunRetention, "run-retention", 0, "how long a finished run's record is kept (0: default 1h; -1: until the runs bucket's 7-day limit)")
	fs.DurationVar(&cfg.RunStoreRetention, "run-store-retention", 0, "how long an ended run's store keys are kept (0: default 1h; -1: kept)")
	fs.BoolVar(&cfg.EventCapture, "event-capture", false, "keep recent events in the capture stream <PREFIX>_EVENTS (memory, 1 h, 64 MiB) so they can be replayed (canoctl runs watch --since); costs the server a stored message per event; always on with -dev")
	fs.StringVar(&cfg.FlowFile, "flows", "", "scheduler flow `file` (JSON) to seed flows from")
	fs.DurationVar(&cfg.LeaderTTL, "leader-ttl", 0, "scheduler leader lease TTL (0: default 10s)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 3*time.Second, "how long shutdown waits for running scheduled flows")
	fs.StringVar(&cfg.HTTP, "http", "", "dashboard listen `address` (default 127.0.0.1:8080 in dev mode, none otherwise; \"off\" disables); other than loopback it needs -http-token or -http-user/-http-password")
	fs.StringVar(&cfg.HTTPToken, "http-token", os.Getenv("CANO_HTTP_TOKEN"), "dashboard access `token` (env CANO_HTTP_TOKEN)")
	fs.StringVar(&cfg.HTTPUser, "http-user", "", "dashboard basic-auth `user`")
	fs.StringVar(&cfg.HTTPPassword, "http-password", os.Getenv("CANO_HTTP_PASSWORD"), "dashboard basic-auth `password` (env CANO_HTTP_PASSWORD)")
	fs.IntVar(&cfg.HTTPIndexMaxRuns, "http-index-max-runs", 0, fmt.Sprintf("dashboard: keep the newest `N` runs in the runs page's index (0: the default, %d; -1: no cap)", client.RunIndexMaxRunsDefault))
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve /healthz, /readyz and /metrics on this `address`, host:port (default: none, dev mode: 127.0.0.1:9090; off: none)")
	shutdown := fs.Duration("shutdown-timeout", 5*time.Second, "graceful shutdown deadline")
	if code, ok := cli.ParseFlags(fs, os.Args[1:], os.Stderr); !ok {
		os.Exit(code)
	}
	cfg.NATS.ApplyEnv(fs, nil)
	if exit, code := info.Run(context.Background(), os.Stdout, os.Stderr); exit {
		os.Exit(code)
	}

	log, err := cli.NewLogger(os.Stderr, logCfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "coordinator:", err)
		os.Exit(2)
	}
	// The collector's floor (internal/gcfloor), unless GOGC or GOMEMLIMIT is set.
	if gcfloor.Set() {
		log.Debug("collector floor set: no cycle below this heap size unless GOGC or GOMEMLIMIT says otherwise", "floor_mib", gcfloor.Floor>>20)
	}
	// Tracing is off unless the OTEL_* variables turn it on.
	tracing, err := otelenv.Start(context.Background(), log, otelenv.Options{Service: "cano-coordinator"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "coordinator:", err)
		os.Exit(2)
	}
	cfg.Tracing = tracing.TracerProvider()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = app.RunCoordinator(ctx, log, cfg, *shutdown)
	stop()
	if ferr := tracing.Shutdown(otelenv.FlushTimeout); ferr != nil {
		log.Warn(ferr.Error())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "coordinator:", err)
		os.Exit(1)
	}
}
