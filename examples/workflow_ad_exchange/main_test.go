package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWorkflowAdExchange(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, run(ctx, &out, ""))
	require.Equal(t, `ana on sport/tour-de-france, floor $1.00: completed via enrich → auction → pick → record → complete: dsp-west wins at $2.10
  enrich (all, 2s): profile succeeded, signals succeeded → segment=cyclist topic=sport
  bids (partial_results(3), 5s): dsp-north succeeded $1.80, dsp-east succeeded $1.55, dsp-west succeeded $2.10, dsp-slow cancelled
  settle (all, 2s): notify succeeded, bill succeeded
bo on news/weather, floor $2.00: completed via enrich → auction → pick → rejected: no bid reached the floor of $2.00 (best $1.50)
  enrich (all, 2s): profile succeeded, signals succeeded → segment=gardener topic=news
  bids (partial_results(3), 5s): dsp-north succeeded $1.20, dsp-east succeeded $0.95, dsp-west succeeded $1.50, dsp-slow cancelled
`, out.String())
}
