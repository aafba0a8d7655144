package dashboard

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckAccess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		addr string
		cfg  Config
		want error // nil, a sentinel, or errAny
	}{
		{"loopback v4", "127.0.0.1:8080", Config{}, nil},
		{"loopback v6", "[::1]:8080", Config{}, nil},
		{"localhost", "localhost:0", Config{}, nil},
		{"every interface, no credentials", ":8080", Config{}, ErrNoCredentials},
		{"0.0.0.0, no credentials", "0.0.0.0:8080", Config{}, ErrNoCredentials},
		{"public ip, no credentials", "10.1.2.3:80", Config{}, ErrNoCredentials},
		{"a host name, no credentials", "dash.example.com:80", Config{}, ErrNoCredentials},
		{"every interface, token", ":8080", Config{Token: "s3cret"}, nil},
		{"every interface, basic auth", ":8080", Config{User: "u", Password: "p"}, nil},
		{"user without password", ":8080", Config{User: "u"}, ErrPartialCredentials},
		{"password without user", "127.0.0.1:8080", Config{Password: "p"}, ErrPartialCredentials},
		{"no port", "127.0.0.1", Config{}, errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkAccess(tc.addr, tc.cfg)
			switch tc.want {
			case nil:
				require.NoError(t, err)
			case errAny:
				require.Error(t, err)
			default:
				require.ErrorIs(t, err, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestNewRefusesOffLoopbackWithoutCredentials(t *testing.T) {
	t.Parallel()
	_, err := New(nil, Config{Addr: "0.0.0.0:8080"})
	require.ErrorIs(t, err, ErrNoCredentials)
	require.Contains(t, err.Error(), "Config.Token")
}

func TestAccess(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	type req struct {
		method, host string
		header       map[string]string
		basic        [2]string
	}
	do := func(h http.Handler, q req) *httptest.ResponseRecorder {
		r := httptest.NewRequest(q.method, "http://"+q.host+"/runs/x/cancel", strings.NewReader(""))
		r.Host = q.host
		for k, v := range q.header {
			r.Header.Set(k, v)
		}
		if q.basic[0] != "" {
			r.SetBasicAuth(q.basic[0], q.basic[1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	open := access(Config{}, ok)
	tokened := access(Config{Token: "s3cret"}, ok)
	basic := access(Config{User: "admin", Password: "pw"}, ok)
	for _, tc := range []struct {
		name string
		h    http.Handler
		r    req
		want int
	}{
		{"loopback, no credentials, GET", open, req{method: "GET", host: "127.0.0.1:8080"}, 200},
		{"loopback, same-origin POST", open, req{method: "POST", host: "127.0.0.1:8080", header: map[string]string{"Sec-Fetch-Site": "same-origin"}}, 200},
		{"cross-site POST refused", open, req{method: "POST", host: "127.0.0.1:8080", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"same-site POST refused", open, req{method: "POST", host: "127.0.0.1:8080", header: map[string]string{"Sec-Fetch-Site": "same-site"}}, 403},
		{"foreign Origin POST refused", open, req{method: "POST", host: "127.0.0.1:8080", header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"matching Origin POST", open, req{method: "POST", host: "127.0.0.1:8080", header: map[string]string{"Origin": "http://127.0.0.1:8080"}}, 200},
		{"cross-site GET is fine", open, req{method: "GET", host: "127.0.0.1:8080", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 200},
		{"DNS rebinding: foreign Host refused", open, req{method: "GET", host: "evil.example:8080"}, 403},
		{"token: none given", tokened, req{method: "GET", host: "dash:80"}, 401},
		{"token: wrong", tokened, req{method: "GET", host: "dash:80", header: map[string]string{"Authorization": "Bearer nope"}}, 401},
		{"token: bearer", tokened, req{method: "GET", host: "dash:80", header: map[string]string{"Authorization": "Bearer s3cret"}}, 200},
		{"token: cookie", tokened, req{method: "GET", host: "dash:80", header: map[string]string{"Cookie": tokenCookie + "=s3cret"}}, 200},
		{"token: action without it", tokened, req{method: "POST", host: "dash:80", header: map[string]string{"Sec-Fetch-Site": "same-origin"}}, 401},
		{"token: cross-site action with it", tokened, req{method: "POST", host: "dash:80", header: map[string]string{"Cookie": tokenCookie + "=s3cret", "Sec-Fetch-Site": "cross-site"}}, 403},
		{"token: same-origin action with it", tokened, req{method: "POST", host: "dash:80", header: map[string]string{"Cookie": tokenCookie + "=s3cret", "Sec-Fetch-Site": "same-origin"}}, 200},
		{"basic: none given", basic, req{method: "GET", host: "dash:80"}, 401},
		{"basic: wrong password", basic, req{method: "GET", host: "dash:80", basic: [2]string{"admin", "x"}}, 401},
		{"basic: right", basic, req{method: "POST", host: "dash:80", basic: [2]string{"admin", "pw"}}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := do(tc.h, tc.r)
			require.Equal(t, tc.want, w.Code, w.Body.String())
		})
	}
	t.Run("basic asks the browser", func(t *testing.T) {
		t.Parallel()
		w := do(basic, req{method: "GET", host: "dash:80"})
		require.Contains(t, w.Header().Get("WWW-Authenticate"), "Basic")
	})
	t.Run("login sets the cookie", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest("GET", "http://dash/login?token=s3cret", nil)
		w := httptest.NewRecorder()
		tokened.ServeHTTP(w, r)
		require.Equal(t, http.StatusSeeOther, w.Code)
		c := w.Result().Cookies()
		require.Len(t, c, 1)
		require.Equal(t, http.SameSiteStrictMode, c[0].SameSite)
		require.True(t, c[0].HttpOnly)
		r = httptest.NewRequest("GET", "http://dash/login?token=wrong", nil)
		w = httptest.NewRecorder()
		tokened.ServeHTTP(w, r)
		require.Equal(t, http.StatusUnauthorized, w.Code)
	})
}

func TestListenErrorNamesTheAddressFlag(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = busy.Close() }()
	addr := busy.Addr().String()

	err = (&Server{cfg: Config{Addr: addr}}).Start(t.Context())
	var le *ListenError
	require.ErrorAs(t, err, &le)
	require.Equal(t, addr, le.Addr)
	require.NotContains(t, err.Error(), "choose another address", "the flag is the caller's to name")

	// cmd/coordinator's flag and canoctl ui's.
	require.ErrorContains(t, FlagError(err, "-", "http", addr), "dashboard: listen on "+addr+": ")
	require.ErrorContains(t, FlagError(err, "-", "http", addr), "(choose another address with -http)")
	require.ErrorContains(t, FlagError(err, "--", "addr", addr), "(choose another address with --addr)")
	require.ErrorAs(t, FlagError(err, "--", "addr", addr), &le)
}
