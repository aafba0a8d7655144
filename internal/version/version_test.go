package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	withRev := func(rev, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.3.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     string
	}{
		{"no build info", nil, "", "cano (devel) (go?)"},
		{"no build info, override", nil, "v1.0.0", "cano v1.0.0 (go?)"},
		{"module version, no vcs", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.3.0"}}, "", "cano v0.3.0 (go1.26.0)"},
		{"empty main version", &debug.BuildInfo{GoVersion: "go1.26.0"}, "", "cano (devel) (go1.26.0)"},
		{"clean revision, shortened", withRev("1a2b3c4d5e6f7a8b9c0d", "false"), "", "cano v0.3.0 (go1.26.0, rev 1a2b3c4d5e6f)"},
		{"dirty revision", withRev("abc", "true"), "", "cano v0.3.0 (go1.26.0, rev abc-dirty)"},
		{"override wins over module version", withRev("abc", "false"), "v9.9.9", "cano v9.9.9 (go1.26.0, rev abc)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, of(tc.bi, tc.override).String())
		})
	}
}

func TestStringNamesThisGo(t *testing.T) {
	t.Parallel()
	s := String()
	require.True(t, strings.HasPrefix(s, "cano "), s)
	bi, ok := debug.ReadBuildInfo()
	require.True(t, ok)
	require.Contains(t, s, bi.GoVersion)
}
