package layout_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/layout"
)

func TestParseDefinitionsKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key         string
		kind, wf, version string
		ok                bool
	}{
		{"definition", layout.DefinitionKey("order", "v2"), layout.DefinitionsKeyDef, "order", "v2", true},
		{"latest", layout.LatestDefinitionKey("order"), layout.DefinitionsKeyLatest, "order", "", true},
		{"def without version", "def.order", "", "", "", false},
		{"def with empty name", "def..v1", "", "", "", false},
		{"def with extra token", "def.order.v1.x", "", "", "", false},
		{"latest without name", "latest.", "", "", "", false},
		{"latest with extra token", "latest.order.v1", "", "", "", false},
		{"other key", "flow.nightly", "", "", "", false},
		{"empty", "", "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, wf, version, ok := layout.ParseDefinitionsKey(tc.key)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.kind, kind)
			require.Equal(t, tc.wf, wf)
			require.Equal(t, tc.version, version)
		})
	}
}
