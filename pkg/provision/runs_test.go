package provision_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
	"github.com/cano-nats/cano/internal/natstest"
	"github.com/cano-nats/cano/pkg/protocol"
	"github.com/cano-nats/cano/pkg/provision"
)

// TestEnsureUpgradesRunsBucket: a runs bucket made before records had
// their own TTL and size cap (4 MiB values, no per-message TTL) is updated
// in place by Ensure.
func TestEnsureUpgradesRunsBucket(t *testing.T) {
	t.Parallel()
	s := natstest.Start(t)
	_, js := s.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bucket := layout.RunsBucket(protocol.MustNames(""))
	_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1,
		TTL: provision.RunsMaxAgeDefault, MaxValueSize: provision.MaxMsgSizeDefault})
	require.NoError(t, err)
	require.NoError(t, provision.Ensure(ctx, js, provision.Config{}))
	st, err := js.Stream(ctx, "KV_"+bucket)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	require.True(t, cfg.AllowMsgTTL, "records may carry their own TTL")
	require.Equal(t, time.Minute, cfg.SubjectDeleteMarkerTTL)
	require.EqualValues(t, 1<<20, cfg.MaxMsgSize)
}
