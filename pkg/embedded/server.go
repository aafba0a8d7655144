package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults for [Config].
const (
	HostDefault         = "127.0.0.1"
	PortDefault         = 4222
	ReadyTimeoutDefault = 10 * time.Second
	// MaxPayloadDefault is the largest message the server accepts (8 MiB),
	// above nats-server's 1 MiB default so big run records and splits fit.
	MaxPayloadDefault = 8 << 20
)

// Config configures an embedded server. The zero value is not valid: StoreDir
// is required.
type Config struct {
	// StoreDir is the JetStream storage directory. Required.
	StoreDir string
	// Host to listen on. Defaults to HostDefault (loopback).
	Host string
	// Port to listen on. 0 means PortDefault; -1 picks a free port.
	Port int
	// ServerName defaults to "cano-<port>".
	ServerName string
	// User and Password, or Token, require client authentication when set.
	User, Password string
	Token          string
	// MaxPayload in bytes. Defaults to MaxPayloadDefault.
	MaxPayload int32
	// Cluster, when non-nil, joins a cluster of embedded servers.
	Cluster *ClusterConfig
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Defaults to ReadyTimeoutDefault.
	ReadyTimeout time.Duration
	// Logs enables the server's own log output (to stderr).
	Logs bool
	// Logger, when set, gets the server's errors and warnings (its notices
	// at debug level) instead of stderr, whatever Logs says.
	Logger *slog.Logger
}

// ErrAddrInUse is matched (with errors.Is) by the error [Start] returns
// when something listens on its host and port already.
var ErrAddrInUse = errors.New("embedded: address in use")

// ClusterConfig joins the server to a JetStream cluster.
type ClusterConfig struct {
	// Name is the cluster name, the same on every node.
	Name string
	// Port is this node's route port (-1 picks a free port).
	Port int
	// Routes are the route URLs of the other nodes (nats-route://127.0.0.1:port).
	Routes []string
}

// Server is a running embedded nats-server.
type Server struct {
	ns   *server.Server
	cfg  Config
	lock *dirLock
}

// Start starts a server and waits until it accepts connections.
//
// The server holds a lock file (cano.lock) in StoreDir until Stop: a
// second server on the same directory, in this process or another, is
// refused with a [*StoreDirInUseError] (matching [ErrStoreDirInUse]) that
// names the directory and what to do, instead of both running on one store.
// A host and port something listens on already is refused at once with an
// error matching [ErrAddrInUse], rather than after ReadyTimeout.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded: StoreDir is required")
	}
	if cfg.Host == "" {
		cfg.Host = HostDefault
	}
	if cfg.Port == 0 {
		cfg.Port = PortDefault
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = MaxPayloadDefault
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = ReadyTimeoutDefault
	}
	opts := &server.Options{
		ServerName:         cfg.ServerName,
		Host:               cfg.Host,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		MaxPayload:         cfg.MaxPayload,
		NoSigs:             true,
		NoLog:              !cfg.Logs,
		Username:           cfg.User,
		Password:           cfg.Password,
		Authorization:      cfg.Token,
		JetStreamMaxMemory: 1 << 30,
		JetStreamMaxStore:  64 << 30,
	}
	if opts.ServerName == "" {
		opts.ServerName = "cano-" + strconv.Itoa(cfg.Port)
		if cfg.Port < 0 {
			opts.ServerName = ""
		}
	}
	if c := cfg.Cluster; c != nil {
		if c.Name == "" {
			return nil, errors.New("embedded: Cluster.Name is required")
		}
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: cfg.Host, Port: c.Port}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("embedded: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if cfg.Port > 0 {
		if err := checkListen(cfg.Host, cfg.Port); err != nil {
			return nil, err
		}
	}
	lock, err := lockDir(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	switch {
	case cfg.Logger != nil:
		ns.SetLoggerV2(slogServer{log: cfg.Logger}, false, false, false) // log.go
	case cfg.Logs:
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		lock.release()
		return nil, fmt.Errorf("embedded: server on %s:%d not ready within %s (port in use?)",
			cfg.Host, cfg.Port, cfg.ReadyTimeout)
	}
	return &Server{ns: ns, cfg: cfg, lock: lock}, nil
}

// checkListen listens on host:port and closes it again: the server
// reports a failed listen only in its log, and [Start] would otherwise wait
// out ReadyTimeout.
func checkListen(host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: %s (%w): stop what listens there, or choose another Config.Host or Config.Port", ErrAddrInUse, addr, err)
	}
	if err != nil {
		return fmt.Errorf("embedded: cannot listen on %s: %w", addr, err)
	}
	_ = l.Close()
	return nil
}

// ClientURL is the URL clients connect to (nats://127.0.0.1:port).
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Port is the client port the server listens on.
func (s *Server) Port() int {
	addr, ok := s.ns.Addr().(*net.TCPAddr)
	if !ok {
		return 0
	}
	return addr.Port
}

// RouteURL is this node's cluster route URL, or "" without a cluster.
func (s *Server) RouteURL() string {
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats-route://" + net.JoinHostPort(s.cfg.Host, strconv.Itoa(addr.Port))
}

// NATS returns the underlying server, for tests that need its internals.
func (s *Server) NATS() *server.Server { return s.ns }

// StoreDir is the JetStream storage directory.
func (s *Server) StoreDir() string { return s.cfg.StoreDir }

// Stop shuts the server down and waits for it. Safe to call twice.
func (s *Server) Stop() {
	if s == nil || s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.lock.release()
}
