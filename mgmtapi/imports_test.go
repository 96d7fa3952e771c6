package mgmtapi

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/pgbroker/pgbroker"

// executor is what a front door must not import, directly or through
// another package of this module: the packages that carry out operations,
// the adapter that calls them, and Nomad's client. What the API needs of
// them is an interface it declares (Users, Extensions, Dumps).
var executor = []string{
	module + "/provisioner", module + "/pgadmin", module + "/backupstore", module + "/nomad",
	module + "/instances", module + "/worker", "github.com/hashicorp/nomad/api",
}

// naming is what mgmtapi may still take from provisioner: names that are
// moving to a leaf package (ShortID, DumpKey, BindingRole). Any other use of
// provisioner fails the test.
var naming = []string{"ShortID", "DumpKey", "BindingRole"}

// TestTheManagementAPIDoesNotImportTheExecutor reads the imports of this
// package's non-test files (go/build) and, through the packages of this
// module they import, the imports of those, and fails naming the chain
// that reaches an executor package.
func TestTheManagementAPIDoesNotImportTheExecutor(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Imports) < 5 {
		t.Fatalf("read %d imports of mgmtapi (%v): go/build misread the package", len(pkg.Imports), pkg.Imports)
	}
	seen := map[string]bool{}
	for _, imp := range pkg.Imports {
		if imp == module+"/provisioner" {
			checkOnlyNaming(t, pkg)
			continue
		}
		reaches(t, imp, []string{module + "/mgmtapi"}, seen)
	}
}

// reaches fails when path, imported along chain, is an executor package or
// imports one through packages of this module.
func reaches(t *testing.T, path string, chain []string, seen map[string]bool) {
	t.Helper()
	chain = append(slices.Clone(chain), path)
	if slices.Contains(executor, path) {
		t.Errorf("mgmtapi imports the executor: %s", strings.Join(chain, " -> "))
		return
	}
	if seen[path] || !strings.HasPrefix(path, module+"/") {
		return
	}
	seen[path] = true
	dep, err := build.ImportDir(filepath.Join("..", strings.TrimPrefix(path, module+"/")), 0)
	if err != nil {
		t.Fatalf("read the imports of %s: %v", path, err)
	}
	for _, imp := range dep.Imports {
		reaches(t, imp, chain, seen)
	}
}

// checkOnlyNaming fails for each use of provisioner in pkg's files other
// than the names in naming.
func checkOnlyNaming(t *testing.T, pkg *build.Package) {
	t.Helper()
	fset := token.NewFileSet()
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		local := ""
		for _, spec := range f.Imports {
			if p, _ := strconv.Unquote(spec.Path.Value); p == module+"/provisioner" {
				local = "provisioner"
				if spec.Name != nil {
					local = spec.Name.Name
				}
			}
		}
		if local == "" {
			continue
		}
		if local == "_" || local == "." {
			t.Errorf("%s imports provisioner as %s", name, local)
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, isIdent := sel.X.(*ast.Ident); isIdent && id.Name == local && !slices.Contains(naming, sel.Sel.Name) {
				t.Errorf("%s: mgmtapi uses provisioner.%s: declare what it needs as an interface instead", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
