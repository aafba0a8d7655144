package worker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
)

// TestOutbox: requests queued from many goroutines all reach the server,
// each reported sent once; stop publishes what is still queued, and an
// outbox stopped refuses more (its caller publishes them itself); a publish
// that fails is reported with its error.
func TestOutbox(t *testing.T) {
	srv := natstest.Start(t)
	nc, _ := srv.Connect(t)
	got := make(chan *nats.Msg, 1000)
	_, err := nc.ChanSubscribe("test.outbox", got)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	var mu sync.Mutex
	sent := map[uint64]int{}
	var failed []uint64
	ob := newOutbox(nc, func(o *outgoing, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed = append(failed, o.token)
			return
		}
		sent[o.token]++
	})
	const goroutines, each = 10, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				token := uint64(g*each + i + 1)
				if !ob.add(outgoing{token: token, msg: &nats.Msg{Subject: "test.outbox", Data: fmt.Appendf(nil, "%d", token)}}) {
					t.Errorf("outbox refused request %d before it was stopped", token)
				}
			}
		}()
	}
	wg.Wait()
	ob.stop() // what is queued still goes
	require.False(t, ob.add(outgoing{token: 9999, msg: &nats.Msg{Subject: "test.outbox"}}), "a stopped outbox refuses")

	seen := map[string]bool{}
	for range goroutines * each {
		m := natstest.Recv(t, got, 5*time.Second)
		require.False(t, seen[string(m.Data)], "request %s published twice", m.Data)
		seen[string(m.Data)] = true
	}
	mu.Lock()
	require.Len(t, sent, goroutines*each)
	for token, n := range sent {
		require.Equal(t, 1, n, "token %d reported sent once", token)
	}
	require.Empty(t, failed)
	mu.Unlock()

	nc.Close()
	ob.publishNow(&outgoing{token: 7, msg: &nats.Msg{Subject: "test.outbox"}})
	mu.Lock()
	require.Equal(t, []uint64{7}, failed, "a failed publish is reported with its error")
	mu.Unlock()
}
