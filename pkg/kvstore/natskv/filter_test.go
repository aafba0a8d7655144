package natskv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSubjectFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ prefix, want string }{
		{"", ">"},
		{"a", ">"},
		{"a.", "a.>"},
		{"a.b", "a.>"},
		{"run.r1.", "run.r1.>"},
		{"run.r1.sou", "run.r1.>"},
	} {
		require.Equal(t, tc.want, subjectFilter(tc.prefix), tc.prefix)
	}
}
