package worker

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReportedVersion: what a worker puts in its presence entry as the
// module's version, by how the binary was built.
func TestReportedVersion(t *testing.T) {
	t.Parallel()
	dep := func(d debug.Module) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "example.com/app", Version: "(devel)"}, Deps: []*debug.Module{&d}}
	}
	for _, c := range []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     string
	}{
		{"this module's binary, local build", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, "", "(devel)"},
		{"this module's binary, version set at link time (the images)", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, "v0.3.0", "v0.3.0"},
		{"this module's binary, go install @version", &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v0.2.0"}}, "", "v0.2.0"},
		{"a user's binary", dep(debug.Module{Path: modulePath, Version: "v0.2.0"}), "v9.9.9", "v0.2.0"},
		{"a user's binary, directory replacement", dep(debug.Module{Path: modulePath, Version: "v0.0.0", Replace: &debug.Module{Path: "../cano"}}), "", "(devel)"},
		{"a user's binary, versioned replacement", dep(debug.Module{Path: modulePath, Version: "v0.0.0", Replace: &debug.Module{Path: "example.com/fork", Version: "v0.2.1"}}), "", "v0.2.1"},
		{"not in the build", &debug.BuildInfo{Main: debug.Module{Path: "example.com/app"}}, "", ""},
	} {
		require.Equal(t, c.want, reportedVersion(c.bi, c.override), c.name)
	}
}
