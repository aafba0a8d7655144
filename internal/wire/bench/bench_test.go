package bench_test

import (
	"context"
	"testing"

	"github.com/cano-nats/cano/internal/wire/bench"
)

// BenchmarkEngine runs canobench's throughput scenarios under go test
// -bench: one-task runs/s and 10-state-chain transitions/s, each beside a
// raw JetStream publish+consume+ack baseline measured in the same process.
// b.N is the number of runs.
//
//	go test -run '^$' -bench Engine -benchtime 20000x ./internal/bench
func BenchmarkEngine(b *testing.B) {
	for _, sc := range []string{"onetask", "chain"} {
		b.Run(sc, func(b *testing.B) {
			n := b.N
			if sc == "chain" {
				n *= 10 // the chain scenario runs n/10 runs of 11 transitions
			}
			rep, err := bench.Run(context.Background(), bench.Config{Runs: max(n, 100), Scenarios: []string{sc}})
			if err != nil {
				b.Fatal(err)
			}
			r := rep.Results[0]
			b.ReportMetric(r.Figures["runs_per_s"], "runs/s")
			b.ReportMetric(r.Figures["transitions_per_s"], "transitions/s")
			b.ReportMetric(rep.Baseline, "baseline_msgs/s")
			b.ReportMetric(r.Figures["transitions_per_s"]/rep.Baseline, "ratio")
			b.ReportMetric(r.Figures["cpu_us_per_run"], "cpu_µs/run")
		})
	}
}
