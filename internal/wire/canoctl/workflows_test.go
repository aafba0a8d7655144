package canoctl_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/client"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/worker"
)

// deployEchoV2 starts a worker with a new version of echo (a changed total
// timeout), which becomes the latest, and returns echo's latest version
// before and after, which differ.
func deployEchoV2(ctx context.Context, t *testing.T, b *bundle) (before, after string) {
	t.Helper()
	wf, err := b.cl.Workflow(ctx, "echo", "")
	require.NoError(t, err)
	before = wf.Version
	nc, err := nats.Connect(b.url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	reg := &fsm.Registry{}
	fsm.Register[echo](reg)
	w, err := worker.New(nc, worker.Config{ID: "w2", Registry: reg, PresenceInterval: -1, DisableBreakers: true,
		Workflows: []worker.Definer{fsm.New[string]("echo", "echo").Register("echo", echo{}).Exit("done").TotalTimeout(time.Hour)}})
	require.NoError(t, err)
	require.NoError(t, w.Start(ctx))
	t.Cleanup(func() { stopWithin(w.Stop) })
	wf, err = b.cl.Workflow(ctx, "echo", "")
	require.NoError(t, err)
	require.NotEqual(t, before, wf.Version)
	return before, wf.Version
}

// workflows promote moves latest back to an older version (a rollback),
// which a worker of that version starting again does not do.
func TestWorkflowsPromote(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, cur := deployEchoV2(ctx, t, b)

	r := b.canoctl(t, "workflows", "promote", "echo", old)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "version "+old+" is now the latest version of workflow echo")
	r = b.canoctl(t, "workflows", "show", "echo", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var v struct {
		Latest string `json:"latest"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v))
	require.Equal(t, old, v.Latest)

	r = b.canoctl(t, "workflows", "promote", "echo", cur, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	require.JSONEq(t, `{"workflow":"echo","latest":"`+cur+`"}`, r.stdout)

	oneErrorLine(t, b.canoctl(t, "workflows", "promote", "echo", "nope"), 1,
		`workflow "echo" has no version "nope" (registered: `+old+", "+cur+")")
	oneErrorLine(t, b.canoctl(t, "workflows", "promote", "nope", "v1"), 1, `workflow "nope" not found`)
	oneErrorLine(t, b.canoctl(t, "workflows", "promote", "echo"), 2, "")
}

// workflows rm refuses a version a run is pinned to and says what to do;
// --allow-in-use deletes it anyway, and the run can still be cancelled.
func TestWorkflowsRmInUse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := b.cl.Trigger(ctx, "echo", &client.TriggerOpts{StartAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	old, _ := deployEchoV2(ctx, t, b) // the run is pinned to the version before

	oneErrorLine(t, b.canoctl(t, "workflows", "rm", "echo", "--version", old), 1,
		"version "+old+" of echo is in use by 1 running or scheduled runs ("+id+"), which could not move on without it: "+
			"wait for them to end or cancel them (canoctl runs list --workflow echo), or pass --allow-in-use to delete it anyway")
	r := b.canoctl(t, "workflows", "rm", "echo", "--version", old, "--allow-in-use")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "deleted version "+old+" of workflow echo")

	r = b.canoctl(t, "runs", "cancel", id)
	require.Equal(t, 0, r.code, r.stderr)
	run, err := b.cl.Await(ctx, id)
	require.ErrorIs(t, err, fsm.ErrCancelled)
	require.Equal(t, client.RunCancelled, run.Status)
}
