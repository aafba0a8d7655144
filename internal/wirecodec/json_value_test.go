package wirecodec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/internal/wirecodec"
)

func TestParseJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want any
		err  string
	}{
		{`{"n": 3, "f": 1.5, "l": [1, "a"]}`, map[string]any{"n": int64(3), "f": 1.5, "l": []any{int64(1), "a"}}, ""},
		{`"x"`, "x", ""},
		{`1e3`, int64(1000), ""},
		{`2.0`, int64(2), ""},
		{`-0.5`, -0.5, ""},
		{`18446744073709551615`, uint64(18446744073709551615), ""},
		{`1e19`, 1e19, ""}, // whole, but beyond int64
		{`null`, nil, ""},
		{`{`, nil, "is not valid JSON"},
		{`1 2`, nil, "holds more than one JSON value"},
		{``, nil, "is not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := wirecodec.ParseJSON([]byte(tc.in))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
