package client_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/scheduler"
	"github.com/cano-nats/cano/pkg/worker"
)

// TestNilConnection checks that every constructor given no connection
// returns an error saying what to pass, rather than panicking later.
func TestNilConnection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		new  func() error
		want string
	}{
		{"client.New", func() error { _, err := client.New(nil, client.Config{}); return err },
			"client: no NATS connection (nil): pass one from nats.Connect"},
		{"worker.New", func() error {
			_, err := worker.New(nil, worker.Config{Registry: &fsm.Registry{}})
			return err
		}, "worker: no NATS connection (nil): pass one from nats.Connect"},
		{"coordinator.New", func() error { _, err := coordinator.New(nil, coordinator.Config{}); return err },
			"coordinator: no NATS connection (nil): pass one from nats.Connect"},
		{"scheduler.New", func() error { _, err := scheduler.New(nil, scheduler.Config{}); return err },
			"scheduler: no JetStream context (nil): pass one from jetstream.New(nc)"},
		{"scheduler.NewClient", func() error { _, err := scheduler.NewClient(nil, scheduler.ClientConfig{}); return err },
			"scheduler: no JetStream context (nil): pass one from jetstream.New(nc)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.EqualError(t, tc.new(), tc.want)
		})
	}
}
