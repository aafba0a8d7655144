package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetricsHandlerServesTheRegistry(t *testing.T) {
	t.Parallel()
	require.Nil(t, registerer(nil), "no registry: no metrics (not a nil pointer in an interface)")
	reg := NewMetricsRegistry()
	web := httptest.NewServer(MetricsHandler(reg))
	t.Cleanup(web.Close)
	resp, err := http.Get(web.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), "go_goroutines ")
	require.Contains(t, string(body), `cano_build_info{goversion="go`, "the build, for following a rollout")
}
