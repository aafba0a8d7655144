// Command exportcount counts the exported identifiers of the module's
// packages and lists those without a doc comment. It counts top-level
// types, functions, constants and variables, and the methods of exported
// types; with -fields also the exported fields of exported structs and the
// methods of exported interfaces. Test files and main packages are
// skipped.
//
//	go run ./internal/tools/exportcount ./pkg            # counts per package
//	go run ./internal/tools/exportcount -check ./pkg     # exit 1 on a missing doc comment
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	fields := flag.Bool("fields", false, "also count exported struct fields and interface methods")
	check := flag.Bool("check", false, "list exported identifiers without a doc comment and exit 1 if there are any")
	flag.Parse()
	roots := flag.Args()
	if len(roots) == 0 {
		roots = []string{"."}
	}
	c := counter{fields: *fields, counts: map[string]int{}}
	for _, root := range roots {
		if err := filepath.WalkDir(root, c.visit); err != nil {
			fmt.Fprintln(os.Stderr, "exportcount:", err)
			os.Exit(2)
		}
	}
	pkgs := make([]string, 0, len(c.counts))
	total := 0
	for p, n := range c.counts {
		pkgs = append(pkgs, p)
		total += n
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		fmt.Printf("%5d %s\n", c.counts[p], p)
	}
	fmt.Printf("%5d total\n", total)
	if *check && len(c.missing) > 0 {
		fmt.Fprintf(os.Stderr, "exportcount: %d exported identifiers have no doc comment (house style: every exported name has one):\n", len(c.missing))
		for _, m := range c.missing {
			fmt.Fprintln(os.Stderr, "  "+m)
		}
		os.Exit(1)
	}
}

type counter struct {
	fields  bool
	counts  map[string]int // by package directory
	missing []string       // "file:line: name"
}

func (c *counter) visit(path string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	if d.IsDir() {
		if n := d.Name(); n == "testdata" || (strings.HasPrefix(n, ".") && n != "." && n != "..") {
			return filepath.SkipDir
		}
		return nil
	}
	if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
		return nil
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		return err
	}
	if f.Name.Name == "main" {
		return nil
	}
	dir := filepath.Dir(path)
	add := func(name string, doc *ast.CommentGroup, pos token.Pos) {
		c.counts[dir]++
		if doc == nil {
			c.missing = append(c.missing, fmt.Sprintf("%s: %s", fset.Position(pos), name))
		}
	}
	for _, decl := range f.Decls {
		switch decl := decl.(type) {
		case *ast.FuncDecl:
			if !decl.Name.IsExported() || (decl.Recv != nil && !exportedReceiver(decl.Recv)) {
				continue
			}
			add(decl.Name.Name, decl.Doc, decl.Pos())
		case *ast.GenDecl:
			for _, spec := range decl.Specs {
				switch spec := spec.(type) {
				case *ast.TypeSpec:
					if !spec.Name.IsExported() {
						continue
					}
					add(spec.Name.Name, orDoc(spec.Doc, decl.Doc), spec.Pos())
					if c.fields {
						c.countMembers(dir, spec.Type)
					}
				case *ast.ValueSpec:
					for _, n := range spec.Names {
						if n.IsExported() {
							add(n.Name, orDoc(orDoc(spec.Doc, spec.Comment), decl.Doc), n.Pos())
						}
					}
				}
			}
		}
	}
	return nil
}

// countMembers counts the exported fields of a struct and the methods of
// an interface.
func (c *counter) countMembers(dir string, t ast.Expr) {
	var list *ast.FieldList
	switch t := t.(type) {
	case *ast.StructType:
		list = t.Fields
	case *ast.InterfaceType:
		list = t.Methods
	default:
		return
	}
	for _, f := range list.List {
		for _, n := range f.Names {
			if n.IsExported() {
				c.counts[dir]++
			}
		}
	}
}

// exportedReceiver reports whether a method's receiver type is exported.
func exportedReceiver(recv *ast.FieldList) bool {
	t := recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}

func orDoc(a, b *ast.CommentGroup) *ast.CommentGroup {
	if a != nil {
		return a
	}
	return b
}
