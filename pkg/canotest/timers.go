package canotest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/pkg/protocol"
)

// ErrNoTimer is returned by [Env.FireTimer] when the run has no timer of
// the kind asked for waiting on the timers stream.
var ErrNoTimer = errors.New("canotest: no such timer is waiting")

// FireTimer fires the run's waiting durable timer of kind now, as if its
// time had come, so that a test sees what a timeout or a delayed start
// does without waiting for it:
//
//   - [protocol.TimerStart] starts a run triggered to start later
//     (client.TriggerOpts.StartAt);
//   - [protocol.TimerRunDeadline] times the run out (the workflow's
//     TotalTimeout): it fails with fsm.ErrWorkflowTimeout;
//   - [protocol.TimerJoin] times out the split the run is in (its
//     JoinConfig.Timeout): the join decides on the branches done so far.
//
// The timer is a message schedule the broker holds until its time;
// FireTimer publishes what the broker would publish then, and removes the
// schedule. The coordinator applies it as it applies a timer that fired
// on time (only the elapsed time a timeout's error reports is the real
// one). A timer is scheduled once the step that needs it is written, a
// moment after the run's trigger or transition; until then, and once it
// has fired or been removed, FireTimer returns an error matching
// [ErrNoTimer]: poll for it with a deadline when the step may not be
// written yet.
func (e *Env) FireTimer(ctx context.Context, runID string, kind protocol.TimerKind) error {
	switch kind {
	case protocol.TimerStart, protocol.TimerRunDeadline, protocol.TimerJoin:
	default:
		return fmt.Errorf("canotest: FireTimer: %q is not a timer a test fires: use protocol.TimerStart, protocol.TimerRunDeadline or protocol.TimerJoin", kind)
	}
	if err := protocol.ValidToken(runID); err != nil {
		return fmt.Errorf("canotest: FireTimer: run id %q: %w", runID, err)
	}
	names := protocol.MustNames("")
	stream, err := e.JS.Stream(ctx, layout.TimersStream(names))
	if err != nil {
		return fmt.Errorf("canotest: FireTimer: the timers stream: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(names.TimerAtSubject(runID, "*")))
	if err != nil {
		return fmt.Errorf("canotest: FireTimer: the timers stream: %w", err)
	}
	// A split's join timer is named by its step: fire every one there is
	// (an older split's is moot, and changes nothing).
	var subjects []string
	for subject := range info.State.Subjects {
		name := subject[strings.LastIndexByte(subject, '.')+1:]
		if name == string(kind) || strings.HasPrefix(name, string(kind)+"-") {
			subjects = append(subjects, subject)
		}
	}
	sort.Strings(subjects)
	fired := 0
	for _, subject := range subjects {
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // fired or removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("canotest: FireTimer: read %s: %w", subject, err)
		}
		target := m.Header.Get("Nats-Schedule-Target")
		if target == "" {
			return fmt.Errorf("canotest: FireTimer: %s has no Nats-Schedule-Target header: not a timer the coordinator scheduled", subject)
		}
		if _, err := e.JS.Publish(ctx, target, m.Data); err != nil {
			return fmt.Errorf("canotest: FireTimer: publish to %s: %w", target, err)
		}
		fired++
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
			return fmt.Errorf("canotest: FireTimer: remove %s after firing it: %w", subject, err)
		}
	}
	if fired == 0 {
		return fmt.Errorf("%w: run %s has no %s timer on the timers stream (its step is not written yet, the workflow sets no such timeout, or the timer has fired or been removed)",
			ErrNoTimer, runID, kind)
	}
	return nil
}
