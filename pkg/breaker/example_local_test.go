package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cano-nats/cano/pkg/breaker"
)

// stepClock is a clock the example moves by hand.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A process-local breaker trips after two consecutive failures, rejects calls
// while open, admits one probe after the cool-down and closes when it
// succeeds. A breaker shared through the KV bucket (pkg/worker's Breakers)
// works the same.
func Example_local() {
	ctx := context.Background()
	clock := &stepClock{now: time.Unix(0, 0)}
	b, err := breaker.New("payments", breaker.NewLocalStore(), breaker.Settings{
		Policy: breaker.Policy{FailureThreshold: 2, ResetTimeout: 10 * time.Second},
		Clock:  clock,
		OnTransitionFunc: func(tr breaker.Transition) {
			fmt.Printf("transition %s: %s -> %s (epoch %d)\n", tr.Name, tr.From, tr.To, tr.Epoch)
		},
	})
	if err != nil {
		panic(err)
	}

	call := func(fail bool) {
		p, err := b.Acquire(ctx)
		if errors.Is(err, breaker.ErrOpen) {
			fmt.Println("rejected:", errors.Is(err, breaker.ErrOpen))
			return
		}
		defer func() { _ = p.Release() }() // an unreported permit counts as a failure
		if fail {
			_ = p.Failure(ctx)
			fmt.Println("call failed")
			return
		}
		_ = p.Success(ctx)
		fmt.Println("call succeeded")
	}

	call(true)
	call(true)
	call(false) // open: rejected without calling
	clock.advance(10 * time.Second)
	call(false) // the probe
	call(false)

	// Output:
	// call failed
	// transition payments: closed -> open (epoch 1)
	// call failed
	// rejected: true
	// transition payments: open -> half_open (epoch 2)
	// transition payments: half_open -> closed (epoch 3)
	// call succeeded
	// call succeeded
}
