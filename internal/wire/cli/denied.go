package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The server reports a publish or subscribe the user's permissions do not
// allow asynchronously (nats.ErrPermissionViolation), and a request to a
// denied subject then just times out: a start step would wait for the
// broker for ever. ConnectWait records the refusals per connection, logs
// each one with what to do, and DeniedSince lets a retry loop stop on one.

// denial is the last refusal on a connection.
type denial struct {
	mu  sync.Mutex
	err error     // guarded by mu
	at  time.Time // guarded by mu
}

var denials sync.Map // *nats.Conn → *denial

// onAsyncError handles a connection's asynchronous errors: a permissions
// violation is recorded and logged with what to do; another error is
// logged as it is.
func onAsyncError(log *slog.Logger) nats.ErrHandler {
	return func(c *nats.Conn, _ *nats.Subscription, err error) {
		if !errors.Is(err, nats.ErrPermissionViolation) {
			log.Warn("NATS reported an error: " + err.Error())
			return
		}
		err = fmt.Errorf("%w: allow it in this NATS user's permissions (the shipped roles are in deploy/nats/accounts.conf: "+
			"a worker may register the definitions of the workflows listed there only)", err)
		v, _ := denials.LoadOrStore(c, &denial{})
		d := v.(*denial)
		d.mu.Lock()
		d.err, d.at = err, time.Now()
		d.mu.Unlock()
		log.Error(err.Error())
	}
}

// forget drops a closed connection's record.
func forget(c *nats.Conn) { denials.Delete(c) }

// DeniedSince returns, for a retry loop's Denied, the last permissions
// violation the server reported on nc at or after a time; nil if none.
func DeniedSince(nc *nats.Conn) func(since time.Time) error {
	return func(since time.Time) error {
		v, ok := denials.Load(nc)
		if !ok {
			return nil
		}
		d := v.(*denial)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.at.Before(since) {
			return nil
		}
		return d.err
	}
}
