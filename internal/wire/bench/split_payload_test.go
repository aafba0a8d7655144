package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/coordinator"
	"github.com/cano-nats/cano/pkg/embedded"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/provision"
	"github.com/cano-nats/cano/pkg/worker"
)

// stockMaxPayload is a stock nats-server's max_payload.
const stockMaxPayload = 1 << 20

// TestSplitDefinitionsOnStockServer registers canobench's workflows, the
// 10,000-branch split among them, on a server with a stock nats-server's
// 1 MiB max payload (it failed with "maximum payload exceeded": the split's
// long form is ~1.4 MB, its compact form 130 kB), runs it to completion,
// and checks that a definition that cannot fit is refused with what to do.
func TestSplitDefinitionsOnStockServer(t *testing.T) {
	t.Parallel()
	srv := natstest.StartWith(t, embedded.Config{MaxPayload: stockMaxPayload})
	nc, js := srv.Connect(t)
	require.EqualValues(t, stockMaxPayload, nc.MaxPayload())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{MaxMsgSize: stockMaxPayload}))

	reg := &fsm.Registry{}
	demo.RegisterAll(reg)
	wfs := []worker.Definer{demo.OneTask()}
	for _, n := range []int{100, 1_000, 10_000} {
		wfs = append(wfs, splitWorkflow(n))
	}
	w, err := worker.New(nc, worker.Config{Registry: reg, Workflows: wfs})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx), "register the split definitions")
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	co, err := coordinator.New(nc, coordinator.Config{MaxPayload: stockMaxPayload})
	require.NoError(t, err)
	require.NoError(t, co.Start(ctx))
	t.Cleanup(func() { _ = co.Stop(context.Background()) })
	cl, err := client.New(nc, client.Config{})
	require.NoError(t, err)

	info, err := cl.Workflow(ctx, "split_10000", "")
	require.NoError(t, err)
	require.Len(t, info.States[0].Branches, 10_000)
	out, err := cl.Run(ctx, "split_10000", nil) // as canobench -scenarios split does
	require.NoError(t, err)
	require.Equal(t, client.RunCompleted, out.Status)
	require.Equal(t, []string{"split", "done"}, out.Path)

	// Branches of two kinds have no compact form: 8,000 of them are
	// ~1.1 MB, refused.
	tasks := make([]fsm.Task, 8_000)
	for i := range tasks {
		tasks[i] = demo.Noop{Next: "done"}
		if i%2 == 1 {
			tasks[i] = demo.Sleep{}
		}
	}
	mixed := fsm.New[string]("mixed", "split").RegisterSplit("split", tasks,
		fsm.JoinConfig[string]{Strategy: join.All(), JoinState: "done"}).Exit("done")
	nc2, _ := srv.Connect(t)
	w2, err := worker.New(nc2, worker.Config{Registry: reg, Workflows: []worker.Definer{mixed}})
	require.NoError(t, err)
	err = w2.Start(ctx)
	_ = w2.Stop(context.Background())
	require.ErrorIs(t, err, worker.ErrDefinitionTooLarge)
	require.ErrorContains(t, err, "fsm.SplitInto")
	require.ErrorContains(t, err, "max_payload")
}
