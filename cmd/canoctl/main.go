// Command canoctl triggers, watches, inspects and cancels Cano runs, and
// manages workflows, flows, circuit breakers, workers and dead letters.
// Run canoctl -h for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cano-nats/cano/internal/wire/canoctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := canoctl.Main(ctx, os.Args[1:], canoctl.IO{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
