// Package provisioning runs pkg/provision's Ensure the way the engine's
// processes need it: retried until the broker takes it ([Wait]) and again
// after every reconnect ([Watch]). It is wiring, not public API: a program
// of its own calls provision.Ensure.
package provisioning

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/retry"
	"github.com/cano-nats/cano/internal/wire/cli"
	"github.com/cano-nats/cano/pkg/provision"
)

// Wait is [provision.Ensure] retried until the broker takes it: while the server is
// down, starting, or a cluster is still electing leaders, it logs
// "waiting for NATS at URL: <reason>; retrying in D" and tries again with
// a capped exponential backoff. It returns nil once every stream and
// bucket is in place, the error of a failure retrying cannot fix
// ([Permanent]: an invalid provision.Config, a setting that cannot change in place),
// or ctx's error wrapping the last failure once ctx ends. log defaults to
// slog.Default(). Each attempt is bounded by [provision.TimeoutDefault].
func Wait(ctx context.Context, log *slog.Logger, js jetstream.JetStream, cfg provision.Config) error {
	loop := retry.Loop{
		Log:            log,
		URL:            func() string { return connURL(js) },
		Permanent:      Permanent,
		Denied:         cli.DeniedSince(js.Conn()),
		AttemptTimeout: provision.TimeoutDefault,
	}
	return loop.Do(ctx, "provision", func(ctx context.Context) error { return provision.Ensure(ctx, js, cfg) })
}

// Watch re-applies cfg every time nc reconnects: a server restarted
// without some of its streams (the events capture stream, when
// configured, keeps its messages in memory, so a restart loses it) gets
// them back without restarting the
// processes that use them. Each reconnect runs [Wait] in the background;
// a failure retrying cannot fix is logged and the watch goes on. Watch
// returns at once; stop ends the watch and waits for a running Ensure to
// give up. It does not close nc. Coordinators and workers call it after
// they start.
func Watch(nc *nats.Conn, js jetstream.JetStream, cfg provision.Config, log *slog.Logger) (stop func()) {
	if log == nil {
		log = slog.Default()
	}
	ch := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case st, ok := <-ch:
				if !ok || st == nats.CLOSED {
					return
				}
			}
			// Several reconnects in a row need one Ensure.
			for len(ch) > 0 {
				if st := <-ch; st == nats.CLOSED {
					return
				}
			}
			log.Info("reconnected: re-applying streams and buckets")
			if err := Wait(ctx, log, js, cfg); err != nil && ctx.Err() == nil {
				log.Error("re-applying streams and buckets after a reconnect failed; "+
					"fix the cause and restart this process", "err", err)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			nc.RemoveStatusListener(ch)
			wg.Wait()
		})
	}
}

// connURL is the URL js's connection is connected to, without
// credentials, or "the server" while disconnected.
func connURL(js jetstream.JetStream) string {
	if u := js.Conn().ConnectedUrlRedacted(); u != "" {
		return u
	}
	if nc := js.Conn(); nc.Opts.Url != "" {
		return redact(nc.Opts.Url)
	}
	return "the server"
}

// redact removes a password or token from a server URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		return u.Redacted()
	}
	u.User = url.User("redacted")
	return u.String()
}

// Permanent reports whether err, from [provision.Ensure], is one retrying cannot
// fix: an invalid [provision.Config] ([provision.ErrInvalidConfig]) or a setting of an
// existing stream that cannot change in place ([provision.ErrImmutableSetting]).
// Every other failure (no connection, no JetStream leader yet, a
// timeout) may pass once the broker is back, and is worth retrying.
func Permanent(err error) bool {
	return errors.Is(err, provision.ErrInvalidConfig) || errors.Is(err, provision.ErrImmutableSetting)
}
