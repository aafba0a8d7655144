// Package deploy_test checks what deploy/ ships: the NATS server config
// with per-role permissions (loaded into an in-process nats-server), the
// Kubernetes manifests, and, where a Docker engine answers, the compose
// cluster brought up and broken (compose_test.go).
package deploy_test

import (
	"os"
	"testing"
	"time"

	"github.com/cano-nats/cano/internal/proctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.Cleanup()
	os.Exit(code)
}

// eventually polls cond every interval until it holds, failing the test
// with msg() (evaluated at the end, so it shows the last state seen) when
// timeout passes first.
func eventually(t *testing.T, timeout, interval time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, msg())
		}
		time.Sleep(interval)
	}
}
