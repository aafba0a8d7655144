package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/pkg/protocol"
)

// The server reports a publish or subscribe the user's permissions do not
// allow asynchronously (nats.ErrPermissionViolation), and a request to a
// denied subject then just times out: a start step would wait for the
// broker for ever. ConnectWait records the refusals per connection, logs
// each one with what to do, and DeniedSince lets a retry loop stop on one.

// denial is the last refusal on a connection of a start step's kind.
type denial struct {
	mu  sync.Mutex
	err error     // guarded by mu
	at  time.Time // guarded by mu
}

var denials sync.Map // *nats.Conn → *denial

// onAsyncError handles a connection's asynchronous errors: a permissions
// violation is logged with what to do, and recorded when it refused a
// start step's kind of subject (see [DeniedSince]); another error is
// logged with its subscription's subject.
func onAsyncError(log *slog.Logger) nats.ErrHandler {
	return func(c *nats.Conn, sub *nats.Subscription, err error) {
		if !errors.Is(err, nats.ErrPermissionViolation) {
			args := []any{"err", err}
			if sub != nil {
				args = append(args, "subject", sub.Subject)
			}
			log.Warn("NATS reported an error on this connection", args...)
			return
		}
		err = fmt.Errorf("%w: allow it in this NATS user's permissions (the shipped roles are in deploy/nats/accounts.conf; "+
			"the worker role lists the workflows whose definitions it may register)", err)
		log.Error(err.Error())
		if !startStepSubject(refusedSubject(err.Error())) {
			return
		}
		v, _ := denials.LoadOrStore(c, &denial{})
		d := v.(*denial)
		d.mu.Lock()
		d.err, d.at = err, time.Now()
		d.mu.Unlock()
	}
}

// refusedSubject is the subject a permissions violation names
// (`… Publish to "SUBJECT"`), "" if none.
func refusedSubject(msg string) string {
	_, rest, ok := strings.Cut(msg, ` to "`)
	if !ok {
		return ""
	}
	subject, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return ""
	}
	return subject
}

// startStepSubject reports whether subject is of the kind start and
// provisioning steps use: the JetStream API and the buckets. A refusal of
// another (a task's own publish on a worker's connection) must not end a
// step running meanwhile.
func startStepSubject(subject string) bool { return protocol.IsJetStreamSubject(subject) }

// forget drops a closed connection's record.
func forget(c *nats.Conn) { denials.Delete(c) }

// DeniedSince returns, for a retry loop's Denied, the last permissions
// violation the server reported on nc at or after a time for a subject of
// the JetStream API or a bucket (what start and provisioning steps use);
// nil if none.
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
