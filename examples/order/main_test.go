package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/canotest"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

func TestOrder(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `order A-1: completed via validate → charge → done (A-1), gateway calls: 2
order A-2: completed via validate → charge → rejected (card declined), gateway calls: 1
order A-3: completed via validate → rejected (invalid order), gateway calls: 0
`, out.String())
}

// README:begin
func TestOrderWorkflow(t *testing.T) {
	t.Parallel()
	reg := &fsm.Registry{}
	fsm.Register[ValidateOrder](reg)
	fsm.Register[ChargeCard](reg)
	env := canotest.Start(t, canotest.Options{Registry: reg, Workflows: []worker.Definer{orderWorkflow()}})

	run, err := env.Client.Run(t.Context(), "order", &client.TriggerOpts{
		Input: Order{ID: "T-1", Card: "4242424242424242", Amount: 1250}})
	require.NoError(t, err)
	require.Equal(t, []string{"validate", "charge", "done"}, run.Path)
	var id string
	require.NoError(t, run.Output(&id))
	require.Equal(t, "T-1", id)
}

// README:end
