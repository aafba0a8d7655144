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
func String() string { return Of().String() }

// Build is what a binary was built from.
type Build struct {
	Version   string // the module version, the link-time override, or "(devel)"
	GoVersion string // "go1.26.0", or "go?" without build information
	Revision  string // the VCS revision's first 12 characters, "-dirty" added for a modified tree; "" if unknown
}

// Of is this binary's build.
func Of() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return of(bi, Version)
}

// revisionLen is how much of a VCS revision is shown.
const revisionLen = 12

// of reads a build from bi (nil when the binary carries no build
// information) and a link-time override.
func of(bi *debug.BuildInfo, override string) Build {
	b := Build{Version: "(devel)", GoVersion: "go?"}
	dirty := false
	if bi != nil {
		b.GoVersion = bi.GoVersion
		if v := bi.Main.Version; v != "" {
			b.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if override != "" {
		b.Version = override
	}
	if len(b.Revision) > revisionLen {
		b.Revision = b.Revision[:revisionLen]
	}
	if b.Revision != "" && dirty {
		b.Revision += "-dirty"
	}
	return b
}

// String is the one-line form: "cano <version> (<go version>[, rev <revision>])".
func (b Build) String() string {
	var s strings.Builder
	s.WriteString("cano ")
	s.WriteString(b.Version)
	s.WriteString(" (")
	s.WriteString(b.GoVersion)
	if b.Revision != "" {
		s.WriteString(", rev ")
		s.WriteString(b.Revision)
	}
	s.WriteString(")")
	return s.String()
}
