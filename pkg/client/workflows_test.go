package client_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/protocol"
)

func workflowNamed(t *testing.T, list []client.WorkflowInfo, name string) client.WorkflowInfo {
	t.Helper()
	for _, wi := range list {
		if wi.Name == name {
			return wi
		}
	}
	t.Fatalf("workflow %q not listed", name)
	return client.WorkflowInfo{}
}

func TestWorkflows(t *testing.T) {
	t.Parallel()
	b := setupB(t)
	ctx := context.Background()

	t.Run("the registered definitions are listed with their states", func(t *testing.T) {
		t.Parallel()
		list, err := b.client.Workflows(ctx)
		require.NoError(t, err)
		var got []string
		for _, wi := range list {
			got = append(got, wi.Name)
		}
		for _, w := range workflows() {
			def, err := w.Definition()
			require.NoError(t, err)
			require.Contains(t, got, def.Name)
		}
		require.IsIncreasing(t, got, "sorted by name")

		chain := workflowNamed(t, list, "chain")
		chainDef, err := workflows()[0].Definition()
		require.NoError(t, err)
		require.Len(t, chainDef.Version, 12, "derived from the content")
		require.Equal(t, chainDef.Version, chain.Latest)
		require.Len(t, chain.Versions, 1)
		require.Equal(t, chainDef.Version, chain.Versions[0].Version)
		require.False(t, chain.Versions[0].Registered.IsZero())
		require.Equal(t, chainDef.Version, chain.Version, "described at its latest version")
		require.Equal(t, "a", chain.Initial)
		require.Equal(t, "default", chain.Queue)
		// Each task's own parameters and attempt policy, as the definition holds them.
		var params map[string]string
		require.NoError(t, wirecodec.DecodeValue(chain.States[0].Params, &params))
		require.Equal(t, map[string]string{"next": "b"}, params)
		require.NotNil(t, chain.States[0].Policy)
		require.Equal(t, chainDef.States[0].Task.Retry.MaxRetries, uint32(chain.States[0].Policy.MaxRetries))
		require.Equal(t, []client.StateInfo{
			{Name: "a", Kind: client.StateTask, Task: "step"},
			{Name: "b", Kind: client.StateTask, Task: "step"},
			{Name: "c", Kind: client.StateTask, Task: "step"},
			{Name: "done", Kind: client.StateExit},
		}, shapes(chain.States))

		quorum := workflowNamed(t, list, "quorum")
		require.Equal(t, []client.StateInfo{
			{Name: "split", Kind: client.StateSplit, Branches: []string{"sleeper", "sleeper", "sleeper", "sleeper"},
				Join: &client.JoinInfo{Strategy: "quorum", N: 2, State: "c"}, Next: []string{"c"}},
			{Name: "c", Kind: client.StateTask, Task: "collect"},
			{Name: "done", Kind: client.StateExit},
		}, shapes(quorum.States))
		require.Len(t, quorum.States[0].BranchPolicies, 4, "one policy per branch")
	})

	t.Run("versions oldest first; the latest is the default", func(t *testing.T) {
		t.Parallel()
		wf := func(v string) *fsm.Workflow[S] {
			return fsm.New[S]("versioned", SA).Register(SA, step{SDone}).Exit(SDone).Version(v)
		}
		startStepWorker(t, b.nc, "w-v1", wf("v1"))
		startStepWorker(t, b.nc, "w-v2", wf("v2"))

		list, err := b.client.Workflows(ctx)
		require.NoError(t, err)
		wi := workflowNamed(t, list, "versioned")
		require.Equal(t, "v2", wi.Latest)
		require.Len(t, wi.Versions, 2)
		require.Equal(t, "v1", wi.Versions[0].Version)
		require.Equal(t, "v2", wi.Versions[1].Version)
		require.Equal(t, "v2", wi.Version)

		def, err := b.client.Workflow(ctx, "versioned", "")
		require.NoError(t, err)
		require.Equal(t, "v2", def.Version)
		def, err = b.client.Workflow(ctx, "versioned", "v1")
		require.NoError(t, err)
		require.Equal(t, "v1", def.Version)
		require.Equal(t, "v2", def.Latest, "one version described, every version listed")
		require.Equal(t, wi.Versions, def.Versions)
		require.Equal(t, wi, *mustWorkflow(t, b.client, "versioned", "v2"))
	})

	t.Run("an unknown workflow or version is not found", func(t *testing.T) {
		t.Parallel()
		_, err := b.client.Workflow(ctx, "nowhere", "")
		require.ErrorIs(t, err, client.ErrWorkflowNotFound)
		_, err = b.client.Workflow(ctx, "chain", "v9")
		require.ErrorIs(t, err, client.ErrWorkflowNotFound)
		_, err = b.client.Workflow(ctx, "a.b", "")
		require.ErrorIs(t, err, protocol.ErrInvalidName)
	})
}

func mustWorkflow(t *testing.T, cl *client.Client, name, version string) *client.WorkflowInfo {
	t.Helper()
	def, err := cl.Workflow(context.Background(), name, version)
	require.NoError(t, err)
	return def
}

// shapes are states without their tasks' parameters and policies.
func shapes(states []client.StateInfo) []client.StateInfo {
	out := make([]client.StateInfo, len(states))
	for i, s := range states {
		s.Params, s.BranchParams, s.Policy, s.BranchPolicies = nil, nil, nil, nil
		out[i] = s
	}
	return out
}
