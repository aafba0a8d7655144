package protocol

import "strings"

// Definitions-bucket key kinds, as returned by [ParseDefinitionsKey].
const (
	DefinitionsKeyDef    = "def"    // [DefinitionKey]: one version of a definition
	DefinitionsKeyLatest = "latest" // [LatestDefinitionKey]: the latest version's name
)

// ParseDefinitionsKey splits a definitions-bucket key into its kind (one of
// the DefinitionsKey constants), the workflow name and, for a
// [DefinitionsKeyDef] key, the version. ok is false for any other key. Names
// and versions are tokens ([ValidToken]) and hold no '.', so the split is
// exact.
func ParseDefinitionsKey(key string) (kind, name, version string, ok bool) {
	kind, rest, _ := strings.Cut(key, ".")
	switch kind {
	case DefinitionsKeyLatest:
		if rest == "" || strings.Contains(rest, ".") {
			return "", "", "", false
		}
		return kind, rest, "", true
	case DefinitionsKeyDef:
		name, version, found := strings.Cut(rest, ".")
		if !found || name == "" || version == "" || strings.Contains(version, ".") {
			return "", "", "", false
		}
		return kind, name, version, true
	}
	return "", "", "", false
}
