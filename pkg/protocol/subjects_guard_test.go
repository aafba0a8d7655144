package protocol_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// subjectLiteral matches a string literal that starts a subject by hand:
// a JetStream API or KV subject, or one under the default prefix.
var subjectLiteral = regexp.MustCompile(`^(\$KV\.|\$JS\.|cano\.[a-z]+\.)`)

// TestSubjectsBuiltInOnePlace keeps every subject built in subjects.go:
// no other non-test source file of the module (examples aside) spells one
// out.
func TestSubjectsBuiltInOnePlace(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// examples/ shows the wire as a program in another language
			// would spell it; the rule is for the engine's own code.
			if name := d.Name(); strings.HasPrefix(name, ".") || name == "testdata" || path == filepath.Join(root, "examples") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || rel == filepath.Join("pkg", "protocol", "subjects.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(lit.Value); err == nil && subjectLiteral.MatchString(s) {
				found = append(found, fset.Position(lit.Pos()).String()+": "+lit.Value)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) > 0 {
		t.Errorf("subjects built outside pkg/protocol/subjects.go (add a function there and call it):\n  %s", strings.Join(found, "\n  "))
	}
}
