// Package version reports the build a binary comes from, for the -version
// flag of every command:
//
//	cano v0.3.0 (go1.26.0, rev 1a2b3c4d5e6f)
//
// The version is the module version Go recorded at build time ("(devel)"
// for a build inside the module's own checkout), unless a release build
// sets [Version] with
//
//	go build -ldflags "-X github.com/cano-nats/cano/internal/version.Version=v0.3.0" ./cmd/...
package version

import (
	"runtime/debug"
	"strings"
)

// Version, when set at link time with -ldflags -X, overrides the module
// version from the build information. Empty by default.
var Version = ""

// String is the one-line version of this binary:
// "cano <version> (<go version>[, rev <revision>[-dirty]])".
func String() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return format(bi, Version)
}

// revisionLen is how much of a VCS revision is shown.
const revisionLen = 12

// format builds the version line from bi (nil when the binary carries no
// build information) and a link-time override.
func format(bi *debug.BuildInfo, override string) string {
	version, goVersion, rev, dirty := "(devel)", "go?", "", false
	if bi != nil {
		goVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" {
			version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if override != "" {
		version = override
	}
	var b strings.Builder
	b.WriteString("cano ")
	b.WriteString(version)
	b.WriteString(" (")
	b.WriteString(goVersion)
	if rev != "" {
		if len(rev) > revisionLen {
			rev = rev[:revisionLen]
		}
		b.WriteString(", rev ")
		b.WriteString(rev)
		if dirty {
			b.WriteString("-dirty")
		}
	}
	b.WriteString(")")
	return b.String()
}
