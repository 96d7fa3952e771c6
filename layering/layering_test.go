package layering

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pgbroker/pgbroker/"

// frontDoors answer HTTP requests; executor packages carry out operations.
var (
	frontDoors = []string{"broker", "mgmtapi", "httpapi", "dashboard"}
	executor   = []string{"provisioner", "adminconn", "servercert", "instancejobs", "tiers", "pitr", "pgadmin", "backup", "instances", "worker", "nomad", "nomad-jobs", "crashpoint", "pki", "patroni", "sealedcopy",
		"github.com/hashicorp/nomad/api"}
	leaves = []string{"naming", "operation", "credentials", "catalog", "users", "extensions", "instance", "sealed", "backends", "webauth", "stats", "pgversion"}
)

// graph maps each package of the module (without the module prefix) to
// everything it imports, directly or not, by go list.
func graph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	g := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		deps := make([]string, 0, len(fields))
		for _, d := range fields[1:] {
			deps = append(deps, strings.TrimPrefix(d, module))
		}
		g[strings.TrimPrefix(fields[0], module)] = deps
	}
	return g
}

// forbidden returns the members of banned that pkg depends on.
func forbidden(g map[string][]string, pkg string, banned []string) []string {
	var hit []string
	for _, d := range g[pkg] {
		for _, b := range banned {
			if d == b || strings.HasPrefix(d, b+"/") {
				hit = append(hit, d)
			}
		}
	}
	return hit
}

func TestFrontDoorsNeverImportTheExecutor(t *testing.T) {
	g := graph(t)
	checked := 0
	for _, fd := range frontDoors {
		if _, ok := g[fd]; !ok {
			continue // not in the module
		}
		checked++
		if hit := forbidden(g, fd, executor); len(hit) > 0 {
			t.Errorf("front door %s imports the executor: %v", fd, hit)
		}
	}
	if checked < 3 {
		t.Fatalf("only %d front doors found in the module: is the list stale?", checked)
	}
}

func TestTheExecutorNeverImportsAFrontDoor(t *testing.T) {
	g := graph(t)
	for _, ex := range executor {
		if hit := forbidden(g, ex, frontDoors); len(hit) > 0 {
			t.Errorf("executor package %s imports a front door: %v", ex, hit)
		}
	}
}

func TestLeavesImportNothingOfPgbroker(t *testing.T) {
	g := graph(t)
	for _, leaf := range leaves {
		deps, ok := g[leaf]
		if !ok {
			t.Fatalf("leaf package %s is not in the module", leaf)
		}
		for _, d := range deps {
			if _, ours := g[d]; ours && !slices.Contains(leaves, d) {
				t.Errorf("leaf %s imports %s", leaf, d)
			}
		}
	}
}
