// Package deploy_test checks what deploy/ ships: the NATS server config
// with per-role permissions (loaded into an in-process nats-server), the
// Kubernetes manifests, and, where a Docker engine answers, the compose
// cluster brought up and broken (compose_test.go).
package deploy_test

import (
	"os"
	"testing"

	"github.com/cano-nats/cano/internal/proctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.Cleanup()
	os.Exit(code)
}
