package app

import (
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// DevRunLogRate is how many finished runs per second the dev mode logs one
// by one; past it, the next logged run says how many were held back.
const DevRunLogRate = 20

// runSampler decides which finished runs are logged: every one up to
// perSecond within a one-second window, then none until the next window,
// whose first logged run reports how many were held back. Pure: the clock
// is passed in.
type runSampler struct {
	perSecond int
	window    time.Time // start of the current window
	logged    int       // logged in the current window
	held      int       // held back since the last logged run
}

// allow reports whether the run that finished at now is logged and, if so,
// how many runs were held back before it.
func (s *runSampler) allow(now time.Time) (ok bool, heldBack int) {
	if s.window.IsZero() || now.Sub(s.window) >= time.Second || now.Before(s.window) {
		s.window, s.logged = now, 0
	}
	if s.logged >= s.perSecond {
		s.held++
		return false, 0
	}
	s.logged++
	heldBack, s.held = s.held, 0
	return true, heldBack
}

// runLogger logs the terminal events it receives (dev mode), at info,
// sampled by a runSampler. A failed run's warning is the coordinator's own
// ("run failed"); this line, with its error, is its end among the others.
type runLogger struct {
	log *slog.Logger
	now func() time.Time
	mu  sync.Mutex
	s   runSampler
}

func newRunLogger(log *slog.Logger, now func() time.Time) *runLogger {
	return &runLogger{log: log, now: now, s: runSampler{perSecond: DevRunLogRate}}
}

// handle logs one event message; anything but a terminal event is ignored.
func (l *runLogger) handle(m *nats.Msg) {
	var ev protocol.Event
	if wirecodec.Decode(m.Data, &ev, 0) != nil || !ev.Type.Terminal() {
		return
	}
	l.mu.Lock()
	ok, held := l.s.allow(l.now())
	l.mu.Unlock()
	if !ok {
		return
	}
	args := []any{"run_id", ev.RunID, "workflow", ev.Workflow, "status", string(ev.Status), "state", ev.State}
	if e := ev.Error; e != nil {
		args = append(args, "attempt", e.Attempts, "category", string(e.Category), "err", e.Message)
	}
	if held > 0 {
		args = append(args, "held_back", held)
	}
	l.log.Info("run finished", args...)
}

// logRuns subscribes the dev mode's run log to the terminal events; the
// returned function unsubscribes.
func logRuns(log *slog.Logger, nc *nats.Conn, prefix string) (func(), error) {
	names, err := protocol.NewNames(prefix)
	if err != nil {
		return nil, err
	}
	l := newRunLogger(log, time.Now)
	var subs []*nats.Subscription
	for _, typ := range []protocol.EventType{protocol.EventCompleted, protocol.EventFailed, protocol.EventCancelled} {
		sub, err := nc.Subscribe(names.EventSubject("*", "*", typ), l.handle)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return nil, err
		}
		subs = append(subs, sub)
	}
	return func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}, nil
}
