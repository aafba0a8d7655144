package dashboard

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ErrNoCredentials is returned by [New] for an address other than loopback
// without an access token or basic-auth credentials.
var ErrNoCredentials = errors.New("dashboard: an address other than loopback needs an access token or basic-auth credentials (Config.Token, or Config.User and Config.Password)")

// ErrPartialCredentials is returned by [New] for a Config.User without a
// Config.Password, or a password without a user.
var ErrPartialCredentials = errors.New("dashboard: set both Config.User and Config.Password, or neither")

// tokenCookie carries the access token once a browser signed in with it
// (GET /login?token=...).
const tokenCookie = "cano_dashboard_token"

// isLoopback reports whether the listen address addr (host:port) binds
// only to loopback. An empty host ("":8080) binds every interface.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("dashboard: address %q: %w (use host:port, e.g. 127.0.0.1:8080)", addr, err)
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// checkAccess is the rule [New] enforces: loopback needs nothing, any
// other address needs a token or a user and password.
func checkAccess(addr string, cfg Config) error {
	lo, err := isLoopback(addr)
	if err != nil {
		return err
	}
	if (cfg.User == "") != (cfg.Password == "") {
		return ErrPartialCredentials
	}
	if !lo && cfg.Token == "" && cfg.User == "" {
		return fmt.Errorf("%w; refusing to serve on %s", ErrNoCredentials, addr)
	}
	return nil
}

// access wraps the dashboard's handler with its access rules:
//
//   - With credentials configured, every request needs them: the token as
//     "Authorization: Bearer <token>" or the cookie set by /login?token=,
//     or basic auth with the user and password.
//   - Without credentials (loopback only), the Host header must name a
//     loopback host, so a DNS-rebinding page cannot reach the dashboard.
//   - Every request that changes something (any method but GET, HEAD and
//     OPTIONS) must be same-origin: net/http's CrossOriginProtection checks
//     Sec-Fetch-Site, or Origin against Host when a browser sends no
//     Sec-Fetch-Site. A request with neither header (curl, scripts) is
//     not a browser's and passes; it still needs the credentials.
func access(cfg Config, next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	protected := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.Token == "" && cfg.User == "" {
			if !loopbackHost(r.Host) {
				http.Error(w, "dashboard: this dashboard has no credentials and answers only to a loopback host name (localhost, 127.0.0.1, [::1])", http.StatusForbidden)
				return
			}
		} else if r.URL.Path == "/login" && cfg.Token != "" {
			login(cfg, w, r)
			return
		} else if !authorized(cfg, r) {
			if cfg.User != "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="cano dashboard", charset="UTF-8"`)
			}
			http.Error(w, "dashboard: unauthorized: sign in with the access token (/login?token=...) or basic-auth credentials", http.StatusUnauthorized)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// login sets the token cookie when ?token= is right, then redirects home.
func login(cfg Config, w http.ResponseWriter, r *http.Request) {
	if !equal(r.URL.Query().Get("token"), cfg.Token) {
		http.Error(w, "dashboard: wrong access token", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: cfg.Token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// authorized reports whether r carries the configured credentials.
func authorized(cfg Config, r *http.Request) bool {
	if cfg.Token != "" {
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") && equal(strings.TrimPrefix(h, "Bearer "), cfg.Token) {
			return true
		}
		if c, err := r.Cookie(tokenCookie); err == nil && equal(c.Value, cfg.Token) {
			return true
		}
	}
	if cfg.User != "" {
		if u, p, ok := r.BasicAuth(); ok && equal(u, cfg.User) && equal(p, cfg.Password) {
			return true
		}
	}
	return false
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// loopbackHost reports whether a Host header names a loopback host.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// FlagError rewrites [New]'s access errors ([ErrNoCredentials],
// [ErrPartialCredentials]) in terms of the command-line flags that set
// those fields, and adds to [Server.Start]'s [*ListenError] the flag that
// chooses another address: dash is the flags' prefix ("-" for
// cmd/coordinator, "--" for canoctl), addrFlag the address flag's name
// without it ("http", "addr"), addr its value. Other errors come back as
// they are.
func FlagError(err error, dash, addrFlag, addr string) error {
	var le *ListenError
	switch {
	case errors.As(err, &le):
		return fmt.Errorf("%w (choose another address with %s%s)", err, dash, addrFlag)
	case errors.Is(err, ErrNoCredentials):
		return fmt.Errorf("%s%s %s is not loopback: serving there needs %shttp-token (or CANO_HTTP_TOKEN), or %shttp-user and %shttp-password (or CANO_HTTP_PASSWORD); without them, listen on loopback (%s%s %s)",
			dash, addrFlag, addr, dash, dash, dash, dash, addrFlag, AddrDefault)
	case errors.Is(err, ErrPartialCredentials):
		return fmt.Errorf("give both %shttp-user and %shttp-password (or CANO_HTTP_PASSWORD), or neither", dash, dash)
	}
	return err
}
