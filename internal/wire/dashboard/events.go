package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cano-nats/cano/pkg/client"
)

// liveEvent is what a page receives for one event (JSON in an SSE "data"
// line). The page inserts these values with textContent only.
type liveEvent struct {
	Type     string   `json:"type"`
	RunID    string   `json:"run_id"`
	Workflow string   `json:"workflow"`
	State    string   `json:"state"`
	Status   string   `json:"status"`
	Time     string   `json:"time"`
	Detail   string   `json:"detail,omitempty"`
	Err      string   `json:"err,omitempty"`
	Path     []string `json:"path,omitempty"`
}

func toLive(ev client.Event) liveEvent {
	le := liveEvent{Type: string(ev.Type), RunID: ev.RunID, Workflow: ev.Workflow, State: ev.State,
		Status: string(ev.Status), Time: ev.Time.Format(time.RFC3339Nano), Detail: ev.Detail, Path: ev.Path}
	if ev.Err != nil {
		le.Err = ev.Err.Error()
	}
	return le
}

// subscriberBuffer is how many events a slow page may lag behind before
// it misses some (it is then told to reload its data).
const subscriberBuffer = 256

// hub reads the events stream once and fans it out to every open page.
type hub struct {
	cl  *client.Client
	log *slog.Logger

	mu   sync.Mutex // guards subs, done
	subs map[chan []byte]struct{}
	done bool
}

func newHub(cl *client.Client, log *slog.Logger) *hub {
	return &hub{cl: cl, log: log, subs: map[chan []byte]struct{}{}}
}

// run reads events until ctx ends, re-opening the stream after a failure
// with a capped backoff.
func (h *hub) run(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		st, err := h.cl.Events(ctx, nil)
		if err == nil {
			delay = 100 * time.Millisecond
			for {
				ev, err := st.Next(ctx)
				if err != nil {
					if ctx.Err() == nil {
						h.log.Warn("dashboard: events stream ended; reopening", "err", err)
					}
					break
				}
				data, _ := json.Marshal(toLive(ev))
				h.broadcast(data)
			}
			st.Stop()
		} else if ctx.Err() == nil {
			h.log.Warn("dashboard: cannot open the events stream; retrying", "err", err, "in", delay)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (h *hub) broadcast(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- data:
		default: // a slow page misses this one
		}
	}
}

// subscribe returns a channel of events, closed when the hub stops; nil
// once it stopped.
func (h *hub) subscribe() chan []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return nil
	}
	ch := make(chan []byte, subscriberBuffer)
	h.subs[ch] = struct{}{}
	return ch
}

func (h *hub) unsubscribe(ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// keepAlive is how often an idle event stream sends a comment line.
const keepAlive = 20 * time.Second

// serveEvents streams events to one page (text/event-stream).
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "dashboard: streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := s.hub.subscribe()
	if ch == nil {
		http.Error(w, "dashboard: shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.hub.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	fl.Flush()
	t := time.NewTicker(keepAlive)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case data, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "data: %s\n\n", data)
			fl.Flush()
		case <-t.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		}
	}
}
