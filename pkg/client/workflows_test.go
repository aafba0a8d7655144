package client_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

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
		require.Len(t, chainDef.Version, fsm.ContentVersionLen, "derived from the content")
		require.Equal(t, chainDef.Version, chain.Latest)
		require.Len(t, chain.Versions, 1)
		require.Equal(t, chainDef.Version, chain.Versions[0].Version)
		require.False(t, chain.Versions[0].Registered.IsZero())
		def := chain.Definition
		require.NotNil(t, def)
		require.Equal(t, "a", def.Initial)
		require.Equal(t, []string{"done"}, def.Exits)
		var states []string
		for _, s := range def.States {
			states = append(states, s.Name)
			require.Equal(t, protocol.StateSingle, s.Kind)
			require.Equal(t, "step", s.Task.Kind)
		}
		require.ElementsMatch(t, []string{"a", "b", "c"}, states)

		quorum := workflowNamed(t, list, "quorum").Definition
		require.NotNil(t, quorum)
		var split *protocol.StateDef
		for i := range quorum.States {
			if quorum.States[i].Name == "split" {
				split = &quorum.States[i]
			}
		}
		require.NotNil(t, split)
		require.Equal(t, protocol.StateSplit, split.Kind)
		require.Len(t, split.Split.Tasks, 4)
		require.Equal(t, "sleeper", split.Split.Tasks[0].Kind)
		require.Equal(t, protocol.JoinQuorum, split.Split.Join.Strategy)
		require.Equal(t, uint32(2), split.Split.Join.N)
		require.Equal(t, "c", split.Split.Join.JoinState)
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
		require.Equal(t, "v2", wi.Definition.Version)

		def, err := b.client.Workflow(ctx, "versioned", "")
		require.NoError(t, err)
		require.Equal(t, "v2", def.Version)
		def, err = b.client.Workflow(ctx, "versioned", "v1")
		require.NoError(t, err)
		require.Equal(t, "v1", def.Version)
		require.Equal(t, wi.Definition, mustWorkflow(t, b.client, "versioned", "v2"))
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

func mustWorkflow(t *testing.T, cl *client.Client, name, version string) *protocol.Definition {
	t.Helper()
	def, err := cl.Workflow(context.Background(), name, version)
	require.NoError(t, err)
	return def
}
