// Package examples holds runnable programs, one per folder; this file only
// keeps the README's snippets in step with them.
package examples

import (
	"os"
	"strings"
	"testing"
)

// snippetMarker precedes, in README.md, a ```go block that must equal the
// region of a file between "// README:begin" and "// README:end".
const snippetMarker = "<!-- snippet: "

// TestReadmeSnippets checks that every snippet the README takes from an
// example is exactly that example's marked region, so the README's code is
// code that compiles and runs (its example's test runs it).
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatalf("read README.md: %v", err)
	}
	lines := strings.Split(string(readme), "\n")
	found := 0
	for i, line := range lines {
		if !strings.HasPrefix(line, snippetMarker) {
			continue
		}
		file := strings.TrimSuffix(strings.TrimPrefix(line, snippetMarker), " -->")
		found++
		t.Run(file, func(t *testing.T) {
			want, err := region(file)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := fence(lines[i+1:])
			if !ok {
				t.Fatalf("README.md line %d: the marker for %s must be followed by a ```go block", i+1, file)
			}
			if got != want {
				t.Errorf("README.md's snippet of %s differs from the file's README:begin/README:end region: "+
					"copy the region into the README.\n--- README ---\n%s\n--- %s ---\n%s", file, got, file, want)
			}
		})
	}
	if found == 0 {
		t.Skip("README.md has no '<!-- snippet: examples/order/main.go -->' marker yet: " +
			"put it before the \"Defining a workflow\" ```go block, whose body is the region of " +
			"examples/order/main.go between // README:begin and // README:end")
	}
}

// region returns the lines of file (relative to the repository root)
// between "// README:begin" and "// README:end", blank lines at either end
// dropped.
func region(file string) (string, error) {
	b, err := os.ReadFile("../" + file)
	if err != nil {
		return "", err
	}
	s := string(b)
	const begin, end = "// README:begin\n", "// README:end\n"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return "", &os.PathError{Op: "find // README:begin and // README:end in", Path: file, Err: os.ErrNotExist}
	}
	return strings.Trim(s[i+len(begin):j], "\n"), nil
}

// fence returns the body of the ```go block that starts lines.
func fence(lines []string) (string, bool) {
	if len(lines) == 0 || lines[0] != "```go" {
		return "", false
	}
	for k := 1; k < len(lines); k++ {
		if lines[k] == "```" {
			return strings.Trim(strings.Join(lines[1:k], "\n"), "\n"), true
		}
	}
	return "", false
}
