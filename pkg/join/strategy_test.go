package join_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/joinrule"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestStrategies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s        join.Strategy
		name     string
		wantKind protocol.JoinStrategy
		required uint32 // out of 10 branches
		bounded  bool
	}{
		{join.Strategy{}, "all", protocol.JoinAll, 10, true},
		{join.All(), "all", protocol.JoinAll, 10, true},
		{join.Any(), "any", protocol.JoinAny, 1, true},
		{join.Quorum(3), "quorum(3)", protocol.JoinQuorum, 3, true},
		{join.Percentage(0.25), "percentage(0.25)", protocol.JoinPercentage, 3, true},
		{join.PartialResults(2), "partial_results(2)", protocol.JoinPartialResults, 2, true},
		{join.PartialTimeout(), "partial_timeout", protocol.JoinPartialTimeout, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.name, tc.s.String())
			spec := tc.s.Spec()
			require.Equal(t, tc.wantKind, spec.Strategy)
			n, ok := joinrule.Required(spec, 10)
			require.Equal(t, tc.bounded, ok)
			if ok {
				require.Equal(t, tc.required, n)
			}
		})
	}
}
