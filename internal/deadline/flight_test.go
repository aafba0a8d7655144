package deadline

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlight: callers share the call in flight; one whose context ends
// stops waiting without stopping the call; a call that has returned is not
// shared with later callers, who start a new one.
func TestFlight(t *testing.T) {
	var f Flight[int]
	var calls atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	fn := func(ctx context.Context) int {
		n := calls.Add(1)
		started <- struct{}{}
		<-release
		return int(n)
	}

	// A caller that gives up: the call goes on.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { _, ok := f.Do(ctx, time.Minute, fn); done <- ok }()
	<-started
	cancel()
	if ok := <-done; ok {
		t.Fatal("a caller whose context ended got a result")
	}

	// Callers meanwhile join that call rather than start their own.
	var wg sync.WaitGroup
	got := make(chan int, 3)
	waiting := make(chan struct{}, 3)
	for range 3 {
		wg.Go(func() {
			v, ok := f.Do(&waitingCtx{Context: context.Background(), waiting: waiting}, time.Minute, fn)
			if !ok {
				t.Error("a caller without a deadline got no result")
			}
			got <- v
		})
	}
	for range 3 {
		<-waiting // each caller waits on the call (Do selects on ctx.Done)
	}
	close(release)
	wg.Wait()
	close(got)
	for v := range got {
		if v != 1 {
			t.Errorf("a caller got the result of call %d, want the first", v)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls made for callers that overlapped one, want 1", n)
	}

	// The call returned: the next caller starts another.
	if v, ok := f.Do(context.Background(), time.Minute, fn); !ok || v != 2 {
		t.Fatalf("after the call returned: got %d, %t; want a second call", v, ok)
	}

	// The call's context is bounded by its own timeout, not the caller's.
	var f2 Flight[error]
	err, ok := f2.Do(context.Background(), time.Millisecond, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	if !ok || err != context.DeadlineExceeded {
		t.Fatalf("got %v, %t; want the call's own timeout", err, ok)
	}
}

// waitingCtx reports on waiting when a caller first selects on Done: Do
// does once it waits for a call.
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting chan<- struct{}
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(func() { c.waiting <- struct{}{} })
	return c.Context.Done()
}
