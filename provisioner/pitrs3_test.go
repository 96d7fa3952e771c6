package provisioner

import (
	"fmt"
	"strings"
	"testing"
)

// TestPITRVarsLocateTheRepositoryWithoutKeys: with a directory repository
// the jobs get pitr_repo alone; with S3 they get the bucket's location as
// variables and the keys only as Variable items, never as variables.
func TestPITRVarsLocateTheRepositoryWithoutKeys(t *testing.T) {
	dir := &Provisioner{cfg: Config{PITRRepo: "/srv/pgbackrest"}}
	vars := map[string]any{}
	dir.setPITRVars(vars)
	if len(vars) != 1 || vars["pitr_repo"] != "/srv/pgbackrest" || dir.pitrSecrets() != nil || !dir.pitr() {
		t.Fatalf("directory repository: vars %v, secrets %v", vars, dir.pitrSecrets())
	}
	if (&Provisioner{}).pitr() {
		t.Fatal("PITR on without a repository")
	}

	s3 := &Provisioner{cfg: Config{PITRS3: &PITRS3{Host: "s3.example.com", Port: 9443, Region: "eu-west-3", Bucket: "pitr",
		Path: "/pgbackrest", CAPEM: "PEM", AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret/key+value"}}}
	vars = map[string]any{}
	s3.setPITRVars(vars)
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
	secrets := s3.pitrSecrets()
	if secrets[itemPITRS3Key] != "AKIAEXAMPLE" || secrets[itemPITRS3KeySecret] != "secret/key+value" || len(secrets) != 2 {
		t.Fatalf("Variable items %v", secrets)
	}
}
