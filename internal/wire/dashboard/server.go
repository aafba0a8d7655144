package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/scheduler"
)

// Defaults for Config.
const (
	// AddrDefault is the listen address: loopback only.
	AddrDefault = "127.0.0.1:8080"
	// PageSizeDefault is how many runs a runs page shows.
	PageSizeDefault = 50
	// PageSizeMax bounds Config.PageSize and the ?size= parameter.
	PageSizeMax = 500
)

// Config configures a Server. The zero value serves on AddrDefault without
// credentials.
type Config struct {
	// Addr is the listen address (host:port). Defaults to AddrDefault. An
	// address other than loopback needs Token or User and Password.
	Addr string
	// Token, when set, is an access token every request must carry
	// ("Authorization: Bearer <token>", or the cookie /login?token= sets).
	Token string
	// User and Password, when set, are basic-auth credentials every
	// request must carry (either these or Token will do).
	User, Password string
	// Prefix of every subject, stream and bucket. Defaults to "cano".
	Prefix string
	// PageSize is how many runs a runs page shows. Defaults to
	// PageSizeDefault; at most PageSizeMax.
	PageSize int
	// IndexMaxRuns caps the runs the runs page's index holds (the newest
	// by creation time; the page says when older runs are beyond it).
	// Defaults to client.RunIndexMaxRunsDefault; -1 means no cap. Flag
	// -http-index-max-runs of cmd/coordinator and canoctl ui.
	IndexMaxRuns int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = AddrDefault
	}
	if c.PageSize == 0 {
		c.PageSize = PageSizeDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	if c.IndexMaxRuns < -1 {
		return fmt.Errorf("dashboard: runs index cap %d (-http-index-max-runs, Config.IndexMaxRuns): want a positive number, 0 for the default (%d) or -1 for no cap",
			c.IndexMaxRuns, client.RunIndexMaxRunsDefault)
	}
	if c.PageSize < 0 || c.PageSize > PageSizeMax {
		return fmt.Errorf("dashboard: Config.PageSize %d: want 1..%d (0 for the default)", c.PageSize, PageSizeMax)
	}
	return checkAccess(c.Addr, c)
}

//go:embed templates/*.tmpl
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Server serves the dashboard. Safe for concurrent use; it does not close
// the NATS connection it is given.
type Server struct {
	cfg   Config
	cl    *client.Client
	flows *scheduler.Client
	tmpl  *template.Template
	hub   *hub
	log   *slog.Logger

	mu     sync.Mutex // guards srv, ln, cancel, index
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc
	index  *client.RunIndex // the runs page's index; nil before StartEvents
}

// New returns a dashboard on nc. It does no I/O. It returns an error
// matching [ErrNoCredentials] for an address other than loopback without
// credentials, [ErrPartialCredentials] for a user without a password or the
// reverse, and one naming the field for another bad setting.
func New(nc *nats.Conn, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cl, err := client.New(nc, client.Config{Prefix: cfg.Prefix})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	flows, err := scheduler.NewClient(js, scheduler.ClientConfig{Prefix: cfg.Prefix})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, cl: cl, flows: flows, tmpl: tmpl, hub: newHub(cl, cfg.Logger), log: cfg.Logger}, nil
}

// Handler returns the dashboard's HTTP handler, access rules included.
// Its live updates flow once [Server.Start] ran (or [Server.StartEvents]).
func (s *Server) Handler() http.Handler { return access(s.cfg, s.routes()) }

// StartEvents starts the events stream that feeds live updates and the
// runs index (a watch of the runs bucket, see client.RunIndex), without
// listening: for a caller that serves [Server.Handler] itself. They run
// until [Server.Stop] (ctx's values are kept, its end is not).
func (s *Server) StartEvents(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go s.hub.run(ctx)
	ix, err := s.cl.WatchRuns(ctx, client.RunIndexConfig{MaxRuns: s.cfg.IndexMaxRuns, Logger: s.log})
	if err != nil {
		s.log.Error("dashboard: runs index; the runs page reads every run instead", "err", err)
		return
	}
	s.index = ix
}

// indexWait bounds how long a page waits for the runs index's first load
// before it reads the runs bucket itself.
const indexWait = 2 * time.Second

// runIndex is the runs index once it has loaded, or nil: before
// StartEvents, or while its first load takes longer than indexWait (the
// caller then reads every record, as without an index).
func (s *Server) runIndex(ctx context.Context) *client.RunIndex {
	s.mu.Lock()
	ix := s.index
	s.mu.Unlock()
	if ix == nil {
		return nil
	}
	t := time.NewTimer(indexWait)
	defer t.Stop()
	select {
	case <-ix.Ready():
		return ix
	case <-t.C:
	case <-ctx.Done():
	}
	s.log.Warn("dashboard: the runs index has not loaded yet; this page reads every run record", "err", ix.Err())
	return nil
}

// ListenError is [Server.Start]'s error when Config.Addr cannot be
// listened on ([FlagError] names the flag that chooses another).
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("dashboard: listen on %s: %v", e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Start listens on Config.Addr and serves until [Server.Stop]. It returns
// once the listener is open (see [Server.Addr]), or a [*ListenError].
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return &ListenError{Addr: s.cfg.Addr, Err: err}
	}
	s.StartEvents(ctx)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("dashboard: serve", "err", err)
		}
	}()
	return nil
}

// Addr is the address the dashboard listens on once started ("" before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop ends the live stream and shuts the server down, bounded by ctx.
// Safe to call twice or without Start.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, cancel, ix := s.srv, s.cancel, s.index
	s.srv, s.cancel, s.index = nil, nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if ix != nil {
		ix.Stop()
	}
	s.hub.closeAll()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("dashboard: shutdown: %w", err)
	}
	return nil
}
