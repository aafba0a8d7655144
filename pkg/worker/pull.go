package worker

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pullWaitDefault is how long one fetch request stays open waiting for
// commands (commands are pushed to the open request as they arrive); it
// also bounds how long Stop waits for the pull loops.
const pullWaitDefault = time.Second

// pull fetches commands for one consumer, never more than there are free
// task slots: every command the broker delivers is started at once. So the
// broker's delivery count is the number of attempts started — a command is
// never delivered and left waiting in a buffer, where a crash or a shutdown
// would cost it an attempt it never made.
func (w *Worker) pull(ctx context.Context, cons jetstream.Consumer, kind string, share int) {
	defer w.pulls.Done()
	for {
		// Reserve at least one slot (blocking), then up to share more.
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < share {
			select {
			case w.slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		// A pull request lives on the server it was sent to: one queued
		// during an outage, or left open on a server that then died, is
		// never answered (a restarted server forgets it) while commands wait.
		// So pull only while connected, and end an open fetch as soon as the
		// connection is back, to pull again from the new server at once.
		select {
		case <-w.conn.Connected():
		case <-ctx.Done():
			w.release(n)
			return
		}
		// Not derived from ctx: a fetch open when Stop begins runs to its
		// end, and the commands it still brings are run, not lost in flight.
		fctx, cancel := w.conn.BindReconnect(context.Background(), pullWaitDefault)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			w.release(n)
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, jetstream.ErrNoMessages) {
				w.log.Debug("fetch", "kind", kind, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		used := 0
		for msg := range batch.Messages() {
			used++
			w.tasks.Add(1)
			w.inFlight.Add(1)
			w.dispatch(ctx, msg)
		}
		cancel()
		w.release(n - used)
		if ctx.Err() != nil {
			return
		}
	}
}

func (w *Worker) release(n int) {
	for i := 0; i < n; i++ {
		<-w.slots
	}
}

// dispatch hands msg to an idle runner, or starts one if none is idle.
// Runners are long-lived goroutines that execute one command after another:
// a command started on a fresh goroutine grows its stack (copying it) while
// it decodes, which cost about a third of execute's CPU time. A runner
// holds a task slot while it executes, and one that has just freed its slot
// may not be idle yet when the slot is reused, so there are at most twice
// as many runners as slots (about as many in practice). Idle runners end
// with the pull loops (ctx).
func (w *Worker) dispatch(ctx context.Context, msg jetstream.Msg) {
	select {
	case w.idle <- msg:
	default:
		go w.runner(ctx, msg)
	}
}

func (w *Worker) runner(ctx context.Context, msg jetstream.Msg) {
	for {
		w.runTask(msg)
		select {
		case msg = <-w.idle:
		case <-ctx.Done():
			return
		}
	}
}

// runTask executes msg. The command's task slot and its place in w.tasks
// are given up here, or, when its result awaits a PubAck, by the PubAck's
// handler (results.go).
func (w *Worker) runTask(msg jetstream.Msg) {
	pending := false
	defer func() {
		w.inFlight.Add(-1)
		if !pending {
			w.settled()
		}
	}()
	pending = w.execute(msg)
}
