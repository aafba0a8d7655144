package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/internal/deadline"
	"github.com/cano-nats/cano/internal/retry"
	"github.com/cano-nats/cano/internal/version"
)

// ConnectTimeoutDefault bounds [Connect] when its context has no deadline.
const ConnectTimeoutDefault = 10 * time.Second

// Reconnect pacing of a connection made by [Connect]: after losing its
// server it tries again every ReconnectWaitDefault plus a random jitter of
// up to ReconnectJitterDefault (ReconnectJitterTLSDefault over TLS, where a
// handshake costs the server more), for ever. nats.go's own wait is 2 s:
// after a broker restart that kept every coordinator and worker away about
// 2 s although the server was back in 0.2 s, and a run whose split joins
// within 5 s could not finish (issue 17). The jitter spreads the processes'
// reconnects so a restarted server is not met by all of them at once.
const (
	ReconnectWaitDefault      = 250 * time.Millisecond
	ReconnectJitterDefault    = 250 * time.Millisecond
	ReconnectJitterTLSDefault = time.Second
)

// NATSConfig is how a process connects to NATS. Every field has a flag and
// an environment variable named as the nats CLI names them. The zero value
// connects to nats.DefaultURL without authentication.
type NATSConfig struct {
	// URL is the server URL, or several separated by commas.
	// Flags -s and --server; environment NATS_URL. Defaults to
	// nats://127.0.0.1:4222.
	URL string
	// Creds is a user credentials file (JWT and nkey seed).
	// Flag --creds; environment NATS_CREDS.
	Creds string
	// NKey is a file holding a user nkey seed.
	// Flag --nkey; environment NATS_NKEY.
	NKey string
	// User and Password authenticate with a username and password.
	// Flags --user, --password; environment NATS_USER, NATS_PASSWORD.
	User, Password string
	// Token authenticates with a token.
	// Flag --token; environment NATS_TOKEN.
	Token string
	// TLSCert and TLSKey are a client certificate and its key (both or
	// neither); TLSCA is a CA certificate to verify the server with.
	// Flags --tlscert, --tlskey, --tlsca; environment NATS_CERT, NATS_KEY,
	// NATS_CA.
	TLSCert, TLSKey, TLSCA string
	// Context names a nats CLI context whose settings fill the fields no
	// flag or variable set (see [NATSConfig.ApplyContext]); "" means the
	// context selected with `nats context select`, if any.
	// Flag --context; environment NATS_CONTEXT.
	Context string
	// Name is the connection name the server shows (not a flag).
	Name string
}

// natsSetting ties a field to its flag names and environment variable.
type natsSetting struct {
	field *string
	flags []string // the first is the long name
	env   string
	usage string
}

func (c *NATSConfig) settings() []natsSetting {
	return []natsSetting{
		{&c.URL, []string{"server", "s"}, "NATS_URL", "NATS server `url`(s), comma separated (default " + nats.DefaultURL + ")"},
		{&c.Creds, []string{"creds"}, "NATS_CREDS", "user credentials `file`"},
		{&c.NKey, []string{"nkey"}, "NATS_NKEY", "user nkey seed `file`"},
		{&c.User, []string{"user"}, "NATS_USER", "`username`"},
		{&c.Password, []string{"password"}, "NATS_PASSWORD", "`password`"},
		{&c.Token, []string{"token"}, "NATS_TOKEN", "authentication `token`"},
		{&c.TLSCert, []string{"tlscert"}, "NATS_CERT", "TLS client certificate `file`"},
		{&c.TLSKey, []string{"tlskey"}, "NATS_KEY", "TLS client key `file`"},
		{&c.TLSCA, []string{"tlsca"}, "NATS_CA", "TLS CA certificate `file` to verify the server"},
		{&c.Context, []string{"context"}, "NATS_CONTEXT", "nats CLI context `name` (default: the selected one)"},
	}
}

// RegisterFlags registers the connection flags on fs: -s/--server,
// --creds, --nkey, --user, --password, --token, --tlscert, --tlskey and
// --tlsca (the flag package accepts one or two dashes for each). Call
// [NATSConfig.ApplyEnv] after fs.Parse to fill in the environment.
// Defaults are not read from the environment here, so -h never prints a
// password or token.
func (c *NATSConfig) RegisterFlags(fs *flag.FlagSet) {
	for _, s := range c.settings() {
		usage := s.usage + " [$" + s.env + "]"
		for i, name := range s.flags {
			if i > 0 {
				usage = "short for -" + s.flags[0]
			}
			fs.StringVar(s.field, name, *s.field, usage)
		}
	}
}

// ApplyEnv sets every field whose flag was not given on the command line
// from its environment variable, when that variable is set and not empty.
// lookup defaults to [os.LookupEnv]. Call it after fs.Parse.
func (c *NATSConfig) ApplyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range c.settings() {
		explicit := false
		for _, name := range s.flags {
			explicit = explicit || given[name]
		}
		if explicit {
			continue
		}
		if v, ok := lookup(s.env); ok && v != "" {
			*s.field = v
		}
	}
}

// validate checks the settings that can be checked without a server.
func (c *NATSConfig) validate() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tlscert and --tlskey must be given together")
	}
	if c.Password != "" && c.User == "" {
		return errors.New("--password needs --user")
	}
	files := []struct{ flag, path string }{
		{"--creds", c.Creds}, {"--nkey", c.NKey},
		{"--tlscert", c.TLSCert}, {"--tlskey", c.TLSKey}, {"--tlsca", c.TLSCA},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("cannot read %s file: %w", f.flag, err)
		}
	}
	return nil
}

// options turns the settings into nats.go options.
func (c *NATSConfig) options() ([]nats.Option, error) {
	var opts []nats.Option
	if c.Name != "" {
		opts = append(opts, nats.Name(c.Name))
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.NKey != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("cannot use --nkey file %s: %w", c.NKey, err)
		}
		opts = append(opts, o)
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	return opts, nil
}

// Connect connects to NATS with cfg, followed by extra (which may override
// the defaults: reconnect for ever, every [ReconnectWaitDefault] plus
// jitter; the connection name). It blocks until
// connected, ctx is done, or the connection fails; when ctx has no deadline
// it waits at most [ConnectTimeoutDefault]. The caller owns the returned
// connection and closes it.
//
// Every failure is one line meant for an operator, with credentials
// removed from URLs. A refused, unreachable or timed-out server gives a
// [*ConnectError] reading "cannot connect to <url>: <reason>"; credentials
// the server rejects give one reading "authorization rejected by <url>",
// which also matches nats.ErrAuthorization (or the expired/revoked
// variants) with [errors.Is]. Settings no flag or variable gave come from the
// nats CLI context ([NATSConfig.ApplyContext]). Missing credential or certificate files are
// reported before any connection attempt.
func Connect(ctx context.Context, cfg NATSConfig, extra ...nats.Option) (*nats.Conn, error) {
	if err := cfg.ApplyContext(nil); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		cfg.URL = nats.DefaultURL
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	ctx, cancel := deadline.Default(ctx, ConnectTimeoutDefault)
	defer cancel()
	dl, _ := ctx.Deadline()
	dialer := &connectDialer{ctx: ctx}
	opts = append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(ReconnectWaitDefault),
		nats.ReconnectJitter(ReconnectJitterDefault, ReconnectJitterTLSDefault),
		nats.Timeout(max(time.Until(dl), time.Millisecond)),
		nats.SetCustomDialer(dialer),
	}, opts...)
	opts = append(opts, extra...)

	nc, err := nats.Connect(cfg.URL, opts...)
	dialer.connected()
	if err != nil {
		return nil, connectError(ctx, redactURLs(cfg.URL), err, dialer.lastError())
	}
	return nc, nil
}

// NoServerHint is what a person reading "waiting for NATS" or "no
// servers available" may do about it.
const NoServerHint = "is a NATS server running there? start one with: go run ./cmd/coordinator -dev, or pass -s URL or set NATS_URL"

// ConnectWait is [Connect] retried until the server answers: it waits
// for a server that is down, starting or unreachable, with a capped
// exponential backoff and one log line per attempt ("waiting for NATS at
// URL: connection refused; retrying in 500ms"), each attempt bounded by
// [ConnectTimeoutDefault]. It returns at once on errors retrying cannot fix,
// marked with [retry.ErrPermanent]: a bad setting or missing file, and
// credentials the server rejects. It returns ctx's error (joined with the
// last failure) when ctx ends first.
//
// The connection reconnects for ever and logs each outage ("lost the
// connection to NATS ...; reconnecting") and its end ("reconnected to
// NATS at URL"), but not its closing by the caller; extra may override
// those handlers. The caller owns the connection and closes it.
func ConnectWait(ctx context.Context, log *slog.Logger, cfg NATSConfig, extra ...nats.Option) (*nats.Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.URL == "" {
		cfg.URL = nats.DefaultURL
	}
	u := redactURLs(cfg.URL)
	// server is the URL of the server last connected to, which the
	// disconnect names (the connection has none by then); u until then.
	var server atomic.Pointer[string]
	server.Store(&u)
	opts := append([]nats.Option{
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if c.IsClosed() {
				return // closed by its owner (a shutdown): nothing was lost
			}
			reason := "connection closed"
			if err != nil {
				reason = retry.Reason(err)
			}
			log.Warn("lost the connection to NATS at " + *server.Load() + ": " + reason + "; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s := redactURLs(nc.ConnectedUrl())
			server.Store(&s)
			log.Info("reconnected to NATS at " + s)
		}),
		nats.ErrorHandler(onAsyncError(log)), // denied.go
		nats.ClosedHandler(forget),
	}, extra...)
	var nc *nats.Conn
	loop := retry.Loop{
		Log:            log,
		URL:            func() string { return u },
		AttemptTimeout: ConnectTimeoutDefault,
		Hint:           NoServerHint,
	}
	err := loop.Do(ctx, "connect", func(actx context.Context) error {
		c, err := Connect(actx, cfg, opts...)
		var ce *ConnectError
		switch {
		case err == nil:
			nc = c
			return nil
		case !errors.As(err, &ce), ce.Auth:
			return retry.Permanent(err)
		}
		return reasonError{ce} // the log line names the URL already
	})
	var re reasonError
	if errors.As(err, &re) {
		return nil, fmt.Errorf("%w (stopped waiting: %w)", re.ce, ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	s := redactURLs(nc.ConnectedUrl())
	server.Store(&s)
	log.Info("connected to NATS at "+s, "server_name", nc.ConnectedServerName(), "server_version", nc.ConnectedServerVersion(),
		"build", version.String())
	return nc, nil
}

// reasonError shows only a ConnectError's reason.
type reasonError struct{ ce *ConnectError }

func (e reasonError) Error() string { return e.ce.Reason }
func (e reasonError) Unwrap() error { return e.ce }

// ConnectError is a failed [Connect], reduced to one line. It unwraps to
// the underlying error.
type ConnectError struct {
	// URL is the server URL with any password or token removed.
	URL string
	// Auth is true when the server rejected the credentials.
	Auth bool
	// Reason is the short cause ("connection refused", "no such host").
	Reason string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *ConnectError) Error() string {
	if e.Auth {
		return "authorization rejected by " + e.URL + ": " + e.Reason
	}
	return "cannot connect to " + e.URL + ": " + e.Reason
}

// Unwrap returns the underlying error.
func (e *ConnectError) Unwrap() error { return e.Err }

func connectError(ctx context.Context, u string, err, dialErr error) error {
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		reason := "check --user/--password, --token, --creds or --nkey"
		if !errors.Is(err, nats.ErrAuthorization) {
			reason = strings.TrimPrefix(err.Error(), "nats: ") + "; " + reason
		}
		return &ConnectError{URL: u, Auth: true, Reason: reason, Err: err}
	case errors.Is(err, nats.ErrNoServers) && dialErr != nil:
		// nats.go reports a refused dial as "no servers available"; the
		// dialer kept the real cause.
		return &ConnectError{URL: u, Reason: dialReason(ctx, dialErr), Err: errors.Join(err, dialErr)}
	default:
		return &ConnectError{URL: u, Reason: dialReason(ctx, err), Err: err}
	}
}

// dialReason is the short, single-line cause of a failed dial or handshake.
func dialReason(ctx context.Context, err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr):
		return "cannot resolve host " + dnsErr.Name
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout(),
		errors.Is(err, nats.ErrTimeout) && ctx.Err() != nil:
		return "timed out"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		err = opErr.Err
	}
	msg := strings.TrimPrefix(err.Error(), "nats: ")
	return strings.Join(strings.Fields(msg), " ") // one line
}

// connectDialer dials with the Connect context during the first connection
// and without it afterwards, so reconnects outlive that context. It keeps
// the last dial error, which nats.go replaces with ErrNoServers.
type connectDialer struct {
	net net.Dialer

	mu sync.Mutex // guards ctx, last
	// nats.CustomDialer's Dial takes no context: the connect attempt's
	// is handed over here, and dropped once connected.
	ctx  context.Context //nolint:containedctx // nil once connected; see above
	last error
}

// Dial implements nats.CustomDialer.
func (d *connectDialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	conn, err := d.net.DialContext(ctx, network, address)
	if err != nil {
		d.mu.Lock()
		d.last = err
		d.mu.Unlock()
	}
	return conn, err
}

func (d *connectDialer) connected() {
	d.mu.Lock()
	d.ctx = nil
	d.mu.Unlock()
}

func (d *connectDialer) lastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// redactURLs removes passwords and tokens from a comma-separated URL list.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || u.User == nil {
			parts[i] = p
			continue
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			parts[i] = u.Redacted()
			continue
		}
		u.User = url.User("redacted") // a bare user part may be a token
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
