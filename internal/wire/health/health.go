// Package health serves a process's health endpoints on its -metrics-addr
// listener:
//
//   - GET /healthz answers 200 "ok" while the process runs (liveness).
//   - GET /readyz answers 200 "ready" when the readiness check passes, and
//     503 "not ready: <reason>" (plain text, one line) otherwise: before the
//     process has started its components, while it is disconnected from
//     NATS, while a stream or bucket it needs is missing, and while a
//     worker's resources are unhealthy.
//
// Other handlers (Prometheus /metrics) can be added to the same listener
// with [Server.Handle] before [Server.Start].
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cano-nats/cano/internal/deadline"
)

// Paths the server answers.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// CheckTimeoutDefault bounds one readiness check when [Config.CheckTimeout]
// is zero.
const CheckTimeoutDefault = 3 * time.Second

// CheckFunc reports why the process is not ready, or nil when it is. It
// should return by the time ctx ends; one that does not (a NATS call
// blocked while the client library dials a server that is gone) still
// gets an answer to /readyz in time, see [Server.Ready].
type CheckFunc func(ctx context.Context) error

// ErrStarting is the reason /readyz gives before [Server.SetReady] is called.
var ErrStarting = errors.New("starting: connecting to NATS, then creating or waiting for the streams and starting (the log says which step it is on)")

// ErrClosed is returned by [Server.Start] after [Server.Stop].
var ErrClosed = errors.New("health: server closed")

// Config configures a [Server]. The zero value listens on no address
// (Start fails); set Addr.
type Config struct {
	// Addr is the host:port to listen on, e.g. "127.0.0.1:9090" or ":9090"
	// (port 0 picks a free one; see [Server.Addr]).
	Addr string
	// CheckTimeout bounds one readiness check. Defaults to
	// CheckTimeoutDefault.
	CheckTimeout time.Duration
	// Logger logs the listener's failures. Defaults to slog.Default().
	Logger *slog.Logger
}

// Server serves /healthz, /readyz and any handler added with Handle. It is
// safe for concurrent use; SetReady may be called at any time.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	ready atomic.Pointer[CheckFunc]

	checks deadline.Flight[error] // the readiness check in flight

	mu     sync.Mutex // guards srv, ln, closed
	srv    *http.Server
	ln     net.Listener
	closed bool
}

// New returns a server that is not listening yet; its readiness check
// reports [ErrStarting] until SetReady is called.
func New(cfg Config) *Server {
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = CheckTimeoutDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET "+LivePath, func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	s.mux.HandleFunc("GET "+ReadyPath, s.serveReady)
	return s
}

// Handle adds a handler for pattern (as http.ServeMux takes it). Call it
// before Start.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler is the server's handler, for tests and for serving it elsewhere.
func (s *Server) Handler() http.Handler { return s.mux }

// SetReady sets the readiness check. nil restores [ErrStarting].
func (s *Server) SetReady(check CheckFunc) {
	if check == nil {
		s.ready.Store(nil)
		return
	}
	s.ready.Store(&check)
}

// Ready runs the readiness check and returns its answer within the
// configured timeout (or ctx, if that ends first), even when the check
// itself does not return in time: then the answer is an error saying so.
// A check still running when Ready is called again is waited for rather
// than run a second time, so probes never pile checks up.
func (s *Server) Ready(ctx context.Context) error {
	p := s.ready.Load()
	if p == nil {
		return ErrStarting
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	check := *p
	err, ok := s.checks.Do(ctx, s.cfg.CheckTimeout, func(cctx context.Context) error { return check(cctx) })
	if !ok {
		return fmt.Errorf("the readiness check did not answer within %s: %w (NATS unreachable, or slow to answer)",
			s.cfg.CheckTimeout, ctx.Err())
	}
	return err
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if err := s.Ready(r.Context()); err != nil {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+oneLine(err.Error()))
		return
	}
	writeText(w, http.StatusOK, "ready")
}

// oneLine joins a multi-line reason (errors.Join) with "; ".
func oneLine(s string) string { return strings.Join(strings.Split(s, "\n"), "; ") }

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, body)
}

// Start listens on Config.Addr and serves in the background. It returns
// the listen error at once (address in use, bad address). It does not
// block.
func (s *Server) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("health: listen on -metrics-addr %q: %w (choose a free address, or leave -metrics-addr empty to serve none)", s.cfg.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	srv := s.srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("health endpoint stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on ("" before Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop shuts the listener down gracefully within ctx. Calling it twice, or
// without Start, is safe.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.closed = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// All is a check that passes when every check passes; it reports every
// failing check's reason.
func All(checks ...CheckFunc) CheckFunc {
	return func(ctx context.Context) error {
		var errs []error
		for _, c := range checks {
			if c == nil {
				continue
			}
			if err := c(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}
