package worker

import (
	"runtime"
	"sync"

	"github.com/nats-io/nats.go"
)

// outbox publishes a busy worker's result requests together, so that many
// go to the server in one socket write.
//
// nats.go writes what a connection has buffered from a flusher goroutine,
// woken by each publish. A result request published by the runner that
// finished the task is written at once, alone: the runner waits next, and
// the flusher runs. Under load that was a write system call per result
// (0.7 per chain transition, measured with perf stat on a worker), and a
// read for each on the server; the coordinator, which publishes from a few
// loops in bursts, made 0.07. Queued here and published by one goroutine
// that first yields (runtime.Gosched, so runners already runnable finish
// their tasks and queue theirs), they left in 0.12 writes per transition
// (without the yield, 0.67): canobench's chain gained 7 % and one-task runs
// 5 % (docs/performance.md, "The worker's writes").
//
// A worker with one task in flight publishes its request itself
// (publishNow): nothing would join it, and a hand-off would only add to its
// latency.
type outbox struct {
	nc   *nats.Conn
	sent func(o *outgoing, err error) // called after each publish
	wake chan struct{}                // capacity 1: a pending wake-up
	done chan struct{}                // closed when the sender ends

	mu      sync.Mutex
	queue   []outgoing // guarded by mu
	stopped bool       // guarded by mu
}

// outgoing is one result request and the call it belongs to.
type outgoing struct {
	token uint64
	msg   *nats.Msg
}

func newOutbox(nc *nats.Conn, sent func(o *outgoing, err error)) *outbox {
	ob := &outbox{nc: nc, sent: sent, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go ob.run()
	return ob
}

// add queues o for the sender. It reports false once the outbox is
// stopped; the caller then publishes o itself.
func (ob *outbox) add(o outgoing) bool {
	ob.mu.Lock()
	if ob.stopped {
		ob.mu.Unlock()
		return false
	}
	ob.queue = append(ob.queue, o)
	first := len(ob.queue) == 1
	ob.mu.Unlock()
	if first {
		select {
		case ob.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// publishNow publishes o on the caller's goroutine.
func (ob *outbox) publishNow(o *outgoing) { ob.sent(o, ob.nc.PublishMsg(o.msg)) }

// stop publishes what is queued and ends the sender.
func (ob *outbox) stop() {
	ob.mu.Lock()
	ob.stopped = true
	ob.mu.Unlock()
	select {
	case ob.wake <- struct{}{}:
	default:
	}
	<-ob.done
}

func (ob *outbox) run() {
	defer close(ob.done)
	var batch []outgoing
	for range ob.wake {
		runtime.Gosched() // let runnable runners queue theirs first
		ob.mu.Lock()
		batch, ob.queue = ob.queue, batch[:0]
		stopped := ob.stopped
		ob.mu.Unlock()
		for i := range batch {
			ob.publishNow(&batch[i])
		}
		clear(batch)
		if stopped {
			return
		}
	}
}
