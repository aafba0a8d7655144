package cli_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/retry"
	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/pkg/embedded"
)

func TestNATSConfigFlagsAndEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want cli.NATSConfig
	}{
		{name: "defaults", want: cli.NATSConfig{}},
		{name: "short server flag", args: []string{"-s", "nats://a:4222"}, want: cli.NATSConfig{URL: "nats://a:4222"}},
		{name: "long server flag", args: []string{"--server", "nats://b:4222"}, want: cli.NATSConfig{URL: "nats://b:4222"}},
		{name: "long flag with one dash and =", args: []string{"-server=nats://c:4222"}, want: cli.NATSConfig{URL: "nats://c:4222"}},
		{name: "env only", env: map[string]string{"NATS_URL": "nats://env:4222"}, want: cli.NATSConfig{URL: "nats://env:4222"}},
		{
			name: "flag beats env",
			args: []string{"-s", "nats://flag:4222"},
			env:  map[string]string{"NATS_URL": "nats://env:4222"},
			want: cli.NATSConfig{URL: "nats://flag:4222"},
		},
		{
			name: "long flag beats env",
			args: []string{"--server", "nats://flag:4222"},
			env:  map[string]string{"NATS_URL": "nats://env:4222"},
			want: cli.NATSConfig{URL: "nats://flag:4222"},
		},
		{name: "empty env ignored", env: map[string]string{"NATS_URL": ""}, want: cli.NATSConfig{}},
		{
			name: "every env variable",
			env: map[string]string{
				"NATS_URL": "nats://env:4222", "NATS_CREDS": "/c.creds", "NATS_NKEY": "/u.nk",
				"NATS_USER": "u", "NATS_PASSWORD": "p", "NATS_TOKEN": "t",
				"NATS_CERT": "/cert.pem", "NATS_KEY": "/key.pem", "NATS_CA": "/ca.pem",
			},
			want: cli.NATSConfig{URL: "nats://env:4222", Creds: "/c.creds", NKey: "/u.nk", User: "u", Password: "p",
				Token: "t", TLSCert: "/cert.pem", TLSKey: "/key.pem", TLSCA: "/ca.pem"},
		},
		{
			name: "every flag",
			args: []string{"-s", "nats://f:1", "--creds", "/f.creds", "--nkey", "/f.nk", "--user", "fu",
				"--password", "fp", "--token", "ft", "--tlscert", "/fc.pem", "--tlskey", "/fk.pem", "--tlsca", "/fca.pem"},
			want: cli.NATSConfig{URL: "nats://f:1", Creds: "/f.creds", NKey: "/f.nk", User: "fu", Password: "fp",
				Token: "ft", TLSCert: "/fc.pem", TLSKey: "/fk.pem", TLSCA: "/fca.pem"},
		},
		{
			name: "flags and env mix per setting",
			args: []string{"--user", "flaguser"},
			env:  map[string]string{"NATS_USER": "envuser", "NATS_PASSWORD": "envpass"},
			want: cli.NATSConfig{User: "flaguser", Password: "envpass"},
		},
		{
			name: "explicitly empty flag beats env",
			args: []string{"--token="},
			env:  map[string]string{"NATS_TOKEN": "envtoken"},
			want: cli.NATSConfig{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var cfg cli.NATSConfig
			cfg.RegisterFlags(fs)
			require.NoError(t, fs.Parse(tc.args))
			cfg.ApplyEnv(fs, func(k string) (string, bool) {
				v, ok := tc.env[k]
				return v, ok
			})
			require.Equal(t, tc.want, cfg)
		})
	}
}

func TestNATSConfigHelpHidesEnvSecrets(t *testing.T) {
	t.Setenv("NATS_PASSWORD", "s3cret-from-env")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	var cfg cli.NATSConfig
	cfg.RegisterFlags(fs)
	fs.PrintDefaults()
	require.NotContains(t, out.String(), "s3cret-from-env")
	for _, name := range []string{"-s", "-server", "-creds", "-nkey", "-user", "-password", "-token", "-tlscert", "-tlskey", "-tlsca"} {
		require.Contains(t, out.String(), "  "+name+" ", name)
	}
	cfg.ApplyEnv(fs, nil) // os.LookupEnv
	require.Equal(t, "s3cret-from-env", cfg.Password)
}

// unusedPort returns a loopback port nothing listens on.
func unusedPort(t *testing.T) int {
	t.Helper()
	// Below Linux's ephemeral range (32768–60999): a port in it can be
	// taken by a dial to itself, when the kernel picks the dialled port as
	// the dial's own (TCP's simultaneous open), and a test that dials a
	// port nothing listens on, then starts a server there, found its port
	// in use.
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(20000+rand.IntN(12000)))
		if err != nil {
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())
		return port
	}
	t.Fatal("no free port below the ephemeral range in 100 tries")
	return 0
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConnectRefused(t *testing.T) {
	t.Parallel()
	url := "nats://127.0.0.1:" + strconv.Itoa(unusedPort(t))
	nc, err := cli.Connect(ctxTimeout(t), cli.NATSConfig{URL: url})
	require.Nil(t, nc)
	require.EqualError(t, err, "cannot connect to "+url+": connection refused")
	var ce *cli.ConnectError
	require.ErrorAs(t, err, &ce)
	require.False(t, ce.Auth)
	require.ErrorIs(t, err, nats.ErrNoServers)
}

func TestConnectRedactsURL(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(unusedPort(t))
	_, err := cli.Connect(ctxTimeout(t), cli.NATSConfig{URL: "nats://alice:hunter2@127.0.0.1:" + port})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
	require.Contains(t, err.Error(), "nats://alice:xxxxx@127.0.0.1:"+port)

	_, err = cli.Connect(ctxTimeout(t), cli.NATSConfig{URL: "nats://tok3n@127.0.0.1:" + port})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "tok3n")
}

func TestConnectCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := cli.Connect(ctx, cli.NATSConfig{URL: "nats://127.0.0.1:" + strconv.Itoa(unusedPort(t))})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "\n")
}

func TestConnectBadFiles(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		cfg  cli.NATSConfig
		want string
	}{
		{"creds", cli.NATSConfig{Creds: missing}, "cannot read --creds file"},
		{"nkey", cli.NATSConfig{NKey: missing}, "cannot read --nkey file"},
		{"tlsca", cli.NATSConfig{TLSCA: missing}, "cannot read --tlsca file"},
		{"cert without key", cli.NATSConfig{TLSCert: missing}, "--tlscert and --tlskey must be given together"},
		{"password without user", cli.NATSConfig{Password: "p"}, "--password needs --user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := cli.Connect(ctxTimeout(t), tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "\n")
		})
	}
	bad := filepath.Join(t.TempDir(), "bad.nk")
	require.NoError(t, os.WriteFile(bad, []byte("not a seed"), 0o600))
	_, err := cli.Connect(ctxTimeout(t), cli.NATSConfig{NKey: bad})
	require.ErrorContains(t, err, "cannot use --nkey file")
}

func startAuthServer(t *testing.T, cfg embedded.Config) string {
	t.Helper()
	cfg.StoreDir = t.TempDir()
	cfg.Port = -1
	s, err := embedded.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s.ClientURL()
}

func TestConnectAuth(t *testing.T) {
	t.Parallel()
	userURL := startAuthServer(t, embedded.Config{User: "cano", Password: "right"})
	tokenURL := startAuthServer(t, embedded.Config{Token: "s3cret"})

	tests := []struct {
		name   string
		cfg    cli.NATSConfig
		wantOK bool
	}{
		{"right password", cli.NATSConfig{URL: userURL, User: "cano", Password: "right"}, true},
		{"wrong password", cli.NATSConfig{URL: userURL, User: "cano", Password: "wrong"}, false},
		{"wrong user", cli.NATSConfig{URL: userURL, User: "eve", Password: "right"}, false},
		{"no credentials", cli.NATSConfig{URL: userURL}, false},
		{"right token", cli.NATSConfig{URL: tokenURL, Token: "s3cret"}, true},
		{"wrong token", cli.NATSConfig{URL: tokenURL, Token: "guess"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nc, err := cli.Connect(ctxTimeout(t), tc.cfg)
			if tc.wantOK {
				require.NoError(t, err)
				require.True(t, nc.IsConnected())
				nc.Close()
				return
			}
			require.Nil(t, nc)
			require.ErrorIs(t, err, nats.ErrAuthorization)
			require.True(t, strings.HasPrefix(err.Error(), "authorization rejected by "+tc.cfg.URL), err.Error())
			require.NotContains(t, err.Error(), "\n")
			var ce *cli.ConnectError
			require.True(t, errors.As(err, &ce) && ce.Auth)
		})
	}
}

// TestConnectReconnectsAfterContext checks that the Connect context only
// bounds the first connection: the connection keeps working, and
// reconnecting, after that context is canceled.
func TestConnectOutlivesContext(t *testing.T) {
	t.Parallel()
	url := startAuthServer(t, embedded.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	nc, err := cli.Connect(ctx, cli.NATSConfig{URL: url, Name: "test"})
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	cancel()

	reconnected := make(chan struct{}, 1)
	nc.SetReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} })
	require.NoError(t, nc.ForceReconnect())
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect within 10s")
	}
	require.NoError(t, nc.Flush())
}

// TestConnectReconnectPacing checks the reconnect defaults (a short wait
// with jitter, for ever: a restarted broker is met within a fraction of a
// second, not nats.go's 2 s) and that extra options override them.
func TestConnectReconnectPacing(t *testing.T) {
	t.Parallel()
	url := startAuthServer(t, embedded.Config{})
	nc, err := cli.Connect(ctxTimeout(t), cli.NATSConfig{URL: url})
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	require.Equal(t, -1, nc.Opts.MaxReconnect)
	require.Equal(t, cli.ReconnectWaitDefault, nc.Opts.ReconnectWait)
	require.Equal(t, cli.ReconnectJitterDefault, nc.Opts.ReconnectJitter)
	require.Equal(t, cli.ReconnectJitterTLSDefault, nc.Opts.ReconnectJitterTLS)

	own, err := cli.Connect(ctxTimeout(t), cli.NATSConfig{URL: url}, nats.ReconnectWait(3*time.Second))
	require.NoError(t, err)
	t.Cleanup(own.Close)
	require.Equal(t, 3*time.Second, own.Opts.ReconnectWait)
}

// TestConnectWaitForServer starts ConnectWait before any server listens
// on its port, then starts one there: it connects, having logged that it
// waits.
func TestConnectWaitForServer(t *testing.T) {
	t.Parallel()
	port := unusedPort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	logs := &natstest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := cli.ConnectWait(ctx, log, cli.NATSConfig{URL: url})
		done <- result{nc, err}
	}()
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), "waiting for NATS at "+url+": connection refused; retrying in")
	}, 30*time.Second, 10*time.Millisecond)
	s, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Port: port})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	select {
	case r := <-done:
		require.NoError(t, r.err)
		t.Cleanup(r.nc.Close)
		require.True(t, r.nc.IsConnected())
	case <-ctx.Done():
		t.Fatal("ConnectWait did not connect within 60s of the server starting")
	}
}

// TestConnectWaitCloseIsQuiet closes a connection as a shutdown does: no
// "lost the connection ...; reconnecting" warning, which would tell a
// person reading a clean shutdown's last line that something went wrong.
func TestConnectWaitCloseIsQuiet(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	logs := &natstest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	closed := make(chan struct{})
	nc, err := cli.ConnectWait(context.Background(), log, cli.NATSConfig{URL: srv.URL},
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	require.NoError(t, err)
	nc.Close()
	select {
	case <-closed: // the disconnect handler runs before it, on the same queue
	case <-time.After(10 * time.Second):
		t.Fatal("the closed handler did not run within 10s")
	}
	require.NotContains(t, logs.String(), "lost the connection")
}

func TestConnectWaitPermanent(t *testing.T) {
	t.Parallel()
	userURL := startAuthServer(t, embedded.Config{User: "cano", Password: "right"})
	tests := []struct {
		name string
		cfg  cli.NATSConfig
		want string
	}{
		{"rejected credentials", cli.NATSConfig{URL: userURL, User: "cano", Password: "wrong"}, "authorization rejected by"},
		{"missing file", cli.NATSConfig{URL: userURL, Creds: filepath.Join(t.TempDir(), "missing")}, "cannot read --creds file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := cli.ConnectWait(ctxTimeout(t), slog.New(slog.NewTextHandler(io.Discard, nil)), tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.ErrorIs(t, err, retry.ErrPermanent)
		})
	}
}

func TestConnectWaitCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := cli.ConnectWait(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)),
		cli.NATSConfig{URL: "nats://127.0.0.1:" + strconv.Itoa(unusedPort(t))})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "cannot connect to nats://127.0.0.1:")
	require.ErrorContains(t, err, ": connection refused (stopped waiting: context deadline exceeded)")
	require.NotContains(t, err.Error(), "\n")
}
