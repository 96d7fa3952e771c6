package extensions

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExtensionAllowList(t *testing.T) {
	for _, name := range []string{"pgcrypto", "hstore", "pg_stat_statements", "uuid-ossp"} {
		if err := CheckExtensions([]string{name}); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	for _, name := range []string{"postgis", "adminpack", "file_fdw", "plpgsql", ""} {
		err := CheckExtensions([]string{"hstore", name})
		if err == nil || !strings.Contains(err.Error(), "pgcrypto") || !strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%q: err = %v, want one naming it and the allowed extensions", name, err)
		}
	}
	if got := PreloadLibraries([]string{"hstore", "pg_stat_statements", "pgcrypto"}); len(got) != 1 || got[0] != "pg_stat_statements" {
		t.Errorf("PreloadLibraries = %v", got)
	}
	if !NeedsRestart(nil, []string{"pg_stat_statements"}) || NeedsRestart([]string{"pgcrypto"}, []string{"hstore"}) {
		t.Error("NeedsRestart misjudges")
	}
	for i := 1; i < len(Contrib); i++ {
		if Contrib[i-1].Name >= Contrib[i].Name {
			t.Fatalf("Contrib is not sorted at %s", Contrib[i].Name)
		}
	}
}

// TestAllowedExtensionsAreInstalled: every allowed extension has its control
// file where Debian's postgresql-contrib puts it (what the raw_exec nodes run).
func TestAllowedExtensionsAreInstalled(t *testing.T) {
	const dir = "/usr/share/postgresql/15/extension"
	if _, err := os.Stat(dir); err != nil {
		msg := dir + " is missing: install postgresql-15 and postgresql-contrib (scripts/install-deps.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, e := range Contrib {
		if _, err := os.Stat(filepath.Join(dir, e.Name+".control")); err != nil {
			t.Errorf("allowed extension %s is not installed: %v", e.Name, err)
		}
	}
}
