package app

import (
	"github.com/cano-nats/cano/internal/wire/demo"
)

// devHints returns the canoctl commands the dev mode suggests at start-up
// (canoctl is in this repository, where `go run ./cmd/coordinator -dev`
// runs; the nats CLI may not be installed): one to trigger the demo
// workflow and follow it, one to watch every run's events. They hold no
// double quotes or backslashes, so the log line's quoting leaves them as
// they are and each pastes into a POSIX shell as one working command.
func devHints(prefix, url string) (trigger, watch string) {
	canoctl := "go run ./cmd/canoctl -s " + url
	if prefix != "" && prefix != "cano" {
		canoctl += " --prefix " + prefix
	}
	return canoctl + " trigger " + demo.WorkflowName + " --wait", canoctl + " runs watch"
}
