package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRefusedSubject(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		msg, subject string
		startStep    bool
	}{
		{`nats: permissions violation: Permissions Violation for Publish to "$KV.cano_definitions.def.x.1"`, "$KV.cano_definitions.def.x.1", true},
		{`nats: permissions violation: Permissions Violation for Subscription to "$JS.API.STREAM.INFO.CANO_TASKS"`, "$JS.API.STREAM.INFO.CANO_TASKS", true},
		{`nats: permissions violation: Permissions Violation for Publish to "cano.trigger.x"`, "cano.trigger.x", false},
		{`nats: permissions violation`, "", false},
		{`Publish to "unterminated`, "", false},
	} {
		got := refusedSubject(c.msg)
		require.Equal(t, c.subject, got, c.msg)
		require.Equal(t, c.startStep, startStepSubject(got), "a task's own refused publish does not end a start step: %s", got)
	}
}
