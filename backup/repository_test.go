package backup

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pgbroker/pgbroker/naming"
)

// TestRepositoryVarsLocateTheRepositoryWithoutKeys: with a directory
// repository the jobs get pitr_repo alone; with S3 they get the bucket's
// location as variables and the keys only as Variable items, never as
// variables.
func TestRepositoryVarsLocateTheRepositoryWithoutKeys(t *testing.T) {
	dir := New(nil, Config{PITRRepo: "/srv/pgbackrest"}, Hooks{}, nil)
	vars := map[string]any{}
	dir.Repository().SetVars(vars)
	if len(vars) != 1 || vars["pitr_repo"] != "/srv/pgbackrest" || dir.Repository().Secrets() != nil || !dir.Repository().On() {
		t.Fatalf("directory repository: vars %v, secrets %v", vars, dir.Repository().Secrets())
	}
	if New(nil, Config{}, Hooks{}, nil).Repository().On() {
		t.Fatal("PITR on without a repository")
	}

	s3 := New(nil, Config{PITRS3: &PITRS3{Host: "s3.example.com", Port: 9443, Region: "eu-west-3", Bucket: "pitr",
		Path: "/pgbackrest", CAPEM: "PEM", AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret/key+value"}}, Hooks{}, nil)
	vars = map[string]any{}
	s3.Repository().SetVars(vars)
	want := map[string]any{"pitr_repo": "/pgbackrest", "pitr_s3_endpoint": "s3.example.com", "pitr_s3_port": 9443,
		"pitr_s3_region": "eu-west-3", "pitr_s3_bucket": "pitr", "pitr_s3_ca": "PEM"}
	if len(vars) != len(want) {
		t.Fatalf("S3 vars %v, want %v", vars, want)
	}
	for k, v := range want {
		if vars[k] != v {
			t.Errorf("S3 var %s = %v, want %v", k, vars[k], v)
		}
	}
	if rendered := fmt.Sprint(vars); strings.Contains(rendered, "AKIAEXAMPLE") || strings.Contains(rendered, "secret/key+value") {
		t.Fatalf("keys among the job variables:\n%s", rendered)
	}
	secrets := s3.Repository().Secrets()
	if secrets[itemPITRS3Key] != "AKIAEXAMPLE" || secrets[itemPITRS3KeySecret] != "secret/key+value" || len(secrets) != 2 {
		t.Fatalf("Variable items %v", secrets)
	}
}

// TestSyncPITRKeysWritesOnlyRotatedKeys: the node Variable gets the
// configured keys when they differ (a rotation), and is left alone, other
// items untouched, when they are in force already.
func TestSyncPITRKeysWritesOnlyRotatedKeys(t *testing.T) {
	n := newFakeNomad()
	n.vars[naming.NodesSecretPath("abc")] = map[string]string{"admin_password": "pw", itemPITRS3Key: "old", itemPITRS3KeySecret: "old-secret"}
	b := New(n, Config{PITRS3: &PITRS3{AccessKeyID: "new", SecretAccessKey: "new-secret"}}, Hooks{}, nil)
	ctx := context.Background()
	if wrote, err := b.SyncPITRKeys(ctx, "abc"); err != nil || !wrote {
		t.Fatalf("first sync = %v, %v; want a write", wrote, err)
	}
	got := n.vars[naming.NodesSecretPath("abc")]
	if got[itemPITRS3Key] != "new" || got[itemPITRS3KeySecret] != "new-secret" || got["admin_password"] != "pw" {
		t.Fatalf("node Variable after the sync: %v", got)
	}
	if wrote, err := b.SyncPITRKeys(ctx, "abc"); err != nil || wrote {
		t.Fatalf("second sync = %v, %v; want no write", wrote, err)
	}
	if wrote, err := New(n, Config{PITRRepo: "/srv"}, Hooks{}, nil).SyncPITRKeys(ctx, "abc"); err != nil || wrote {
		t.Fatalf("sync without S3 = %v, %v", wrote, err)
	}
}

func TestStanzaPrefixIsWherePgBackRestWritesTheStanza(t *testing.T) {
	for path, want := range map[string]string{"/pgbackrest": "pgbackrest/archive/abc/", "/a/b/": "a/b/archive/abc/", "/": "archive/abc/", "": "archive/abc/"} {
		if got := stanzaPrefix(path, "archive", "abc"); got != want {
			t.Errorf("stanzaPrefix(%q) = %q, want %q", path, got, want)
		}
	}
}
