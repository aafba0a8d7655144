package app

import (
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/protocol"
)

// devHints returns the nats CLI commands the dev mode suggests at start-up:
// one to watch the events, one to trigger the demo workflow. They hold no
// double quotes or backslashes, so the log line's quoting leaves them as
// they are and each pastes into a POSIX shell as one working command.
func devHints(prefix, url string) (watch, trigger string) {
	names, err := protocol.NewNames(prefix)
	if err != nil {
		names = protocol.MustNames("")
	}
	watch = "nats sub '" + names.EventWildcard() + "' -s " + url
	trigger = "nats pub " + names.TriggerSubject(demo.WorkflowName) + " '{}' -H Content-Type:application/json -s " + url
	return watch, trigger
}
