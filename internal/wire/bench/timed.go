package bench

import (
	"context"
	"time"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// How the timed scenario waits for the removal of moot timers to settle.
const (
	timedPoll   = 100 * time.Millisecond
	timedStill  = time.Second      // no change this long: settled
	timedSettle = 30 * time.Second // at most
)

// timed makes one-task runs whose workflow has an hour's total timeout:
// each run schedules a deadline timer on the timers stream, which its end
// makes moot and its coordinator removes, best effort (pkg/coordinator,
// unschedule.go). Besides the throughput figures it reports the timers
// still held when the load ends (timers_left_at_end) and once their
// removal has stopped (timers_left, after drain_ms): those fire in an hour
// and change nothing. Every run's timer left is the ceiling; none the aim.
func (e *env) timed(ctx context.Context) (Result, error) {
	stream, err := e.js.Stream(ctx, layout.TimersStream(protocol.MustNames("")))
	if err != nil {
		return Result{}, err
	}
	held := func() (float64, error) {
		info, err := stream.Info(ctx)
		if err != nil {
			return 0, err
		}
		return float64(info.State.Msgs), nil
	}
	before, err := held()
	if err != nil {
		return Result{}, err
	}
	r, err := e.throughput(ctx, "timed", timedWorkflow, e.cfg.Runs, 1)
	if err != nil {
		return Result{}, err
	}
	end := time.Now()
	last, err := held()
	if err != nil {
		return Result{}, err
	}
	r.Figures["timers_left_at_end"] = last - before
	changed := end
	for now := end; now.Sub(changed) < timedStill && now.Sub(end) < timedSettle; now = time.Now() {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(timedPoll):
		}
		n, err := held()
		if err != nil {
			return Result{}, err
		}
		if n != last {
			last, changed = n, time.Now()
		}
	}
	r.Figures["timers_left"] = last - before
	r.Figures["drain_ms"] = float64(changed.Sub(end).Milliseconds())
	r.Note = "one-task runs with an hour's total timeout: timers_left are the moot deadline timers the coordinator did not remove (they fire in an hour and change nothing)"
	return r, nil
}
