package coordinator_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/coordinator"
)

// TestTasksStreamAnchor: a coordinator keeps an anchor message in the
// tasks stream (anchor.go), so sequential runs, each of whose commands
// empties the work queue when acknowledged, do not make the server's file
// store replace its last message block — a file deleted and one created —
// per run. Without the anchor, 40 sequential runs create about 40 block
// files.
func TestTasksStreamAnchor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := setupRedrive(t, ctx, coordinator.Config{}) // the definition known, the path warm
	tasks, err := b.js.Stream(ctx, layout.TasksStream(b.names))
	require.NoError(t, err)
	anchor := layout.TasksAnchorSubject(b.names)
	natstest.WaitFor(t, 10*time.Second, "the coordinator's anchor stored", func() bool {
		info, err := tasks.Info(ctx, jetstream.WithSubjectFilter(anchor))
		return err == nil && info.State.Subjects[anchor] > 0
	})

	dir := filepath.Join(b.srv.StoreDir(), "jetstream", "$G", "streams", layout.TasksStream(b.names), "msgs")
	before := lastBlock(t, dir)
	const runs = 40
	for i := 0; i < runs; i++ {
		_, err := b.cl.Run(ctx, demo.OneTaskName, nil)
		require.NoError(t, err)
	}
	after := lastBlock(t, dir)
	t.Logf("%d sequential runs: last message block %d → %d", runs, before, after)
	require.Less(t, after-before, 3, "a message block file replaced per run: the tasks stream's last block was emptied")
	// Run returns on the completed event; the worker acknowledges its
	// command once the coordinator has answered its result, which may be
	// a moment later: the last command may still be there until then.
	var msgs, anchors uint64
	natstest.WaitFor(t, 10*time.Second, "anchors all the drained stream holds", func() bool {
		info, err := tasks.Info(ctx, jetstream.WithSubjectFilter(anchor))
		if err != nil {
			return false
		}
		msgs, anchors = info.State.Msgs, info.State.Subjects[anchor]
		return msgs == anchors
	})
	require.NotZero(t, anchors, "the anchor is kept (%d messages)", msgs)
}

// lastBlock is the highest index of the message block files in dir
// (<index>.blk).
func lastBlock(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	last := 0
	for _, e := range entries {
		if n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".blk")); err == nil && strings.HasSuffix(e.Name(), ".blk") {
			last = max(last, n)
		}
	}
	require.NotZero(t, last, "no message block in %s", dir)
	return last
}
