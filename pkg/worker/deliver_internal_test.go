package worker

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		n    int
		want time.Duration
	}{
		{"first try", 0, 100 * time.Millisecond},
		{"negative is first", -3, 100 * time.Millisecond},
		{"doubles", 1, 200 * time.Millisecond},
		{"doubles again", 3, 800 * time.Millisecond},
		{"capped", 6, 5 * time.Second},
		{"capped far out, no overflow", 1000, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, backoff(resultRetryFirstDelay, resultRetryMaxDelay, tc.n))
		})
	}
}

func TestHandBackPlan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		delivered   int
		maxAttempts int
		wantDelay   time.Duration
		wantDead    bool
	}{
		{"first delivery of one attempt", 1, 1, handBackFirstDelay, false},
		{"second delivery backs off", 2, 1, 2 * handBackFirstDelay, false},
		{"last hand-back beyond the policy", 1 + handBacksMax - 1, 1, 8 * handBackFirstDelay, false},
		{"past the bound: dead-lettered", 1 + handBacksMax, 1, 0, true},
		{"bound counts from the policy's attempts", 5 + handBacksMax - 1, 5, handBackMaxDelay, false},
		{"policy of five, past the bound", 5 + handBacksMax, 5, 0, true},
		{"undecodable command: bound alone", handBacksMax, 0, 0, true},
		{"undecodable command: first delivery", 1, 0, handBackFirstDelay, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delay, dead := handBackPlan(tc.delivered, tc.maxAttempts)
			require.Equal(t, tc.wantDead, dead)
			require.Equal(t, tc.wantDelay, delay)
		})
	}
}

// recordingMsg counts the heartbeats and settlements of a command. Only
// the methods leases use are implemented.
type recordingMsg struct {
	jetstream.Msg
	mu       sync.Mutex
	progress int    // guarded by mu
	settled  string // guarded by mu
}

func (m *recordingMsg) InProgress() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.settled != "" {
		panic("heartbeat after " + m.settled)
	}
	m.progress++
	return nil
}

func (m *recordingMsg) settle(how string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled = how
	return nil
}

func (m *recordingMsg) Ack() error                         { return m.settle("ack") }
func (m *recordingMsg) Nak() error                         { return m.settle("nak") }
func (m *recordingMsg) NakWithDelay(time.Duration) error   { return m.settle("nak with delay") }
func (m *recordingMsg) Term() error                        { return m.settle("term") }
func (m *recordingMsg) TermWithReason(reason string) error { return m.settle("term: " + reason) }

func (m *recordingMsg) beats() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.progress
}

// One heartbeat per held command per beat; a settled command is never
// heartbeated again (an InProgress after NakWithDelay would override its
// delay), whichever way it was settled.
func TestLeases(t *testing.T) {
	t.Parallel()
	var l leases
	settle := map[string]func(*lease) error{
		"ack":            (*lease).Ack,
		"nak":            (*lease).Nak,
		"nak with delay": func(le *lease) error { return le.NakWithDelay(time.Second) },
		"term":           (*lease).Term,
		"term: why":      func(le *lease) error { return le.TermWithReason("why") },
	}
	msgs := map[string]*recordingMsg{}
	held := map[string]*lease{}
	for how := range settle {
		msgs[how] = &recordingMsg{}
		held[how] = l.hold(msgs[how])
	}
	l.beat()
	l.beat()
	for how := range settle {
		require.Equal(t, 2, msgs[how].beats(), how)
	}
	for how, fn := range settle {
		require.NoError(t, fn(held[how]))
		l.release(held[how]) // a second release is a no-op
		l.beat()             // panics if it reaches a settled command
		require.Equal(t, how, msgs[how].settled)
	}
	require.Zero(t, l.len())

	// Concurrent holds, releases and beats (run with -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				m := &recordingMsg{}
				le := l.hold(m)
				l.beat()
				require.NoError(t, le.Ack())
			}
		}()
	}
	wg.Wait()
	require.Zero(t, l.len())
}
