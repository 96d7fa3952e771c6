package backup

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
)

func TestAllocIndexReadsTheIndexOfTheAllocationName(t *testing.T) {
	for name, want := range map[string]int{"pg-0123456789ab-nodes.node-0[0]": 0, "pg-x-nodes.node-12[0]": 12} {
		if got, err := nodeIndex(name); err != nil || got != want {
			t.Errorf("nodeIndex(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"pg-x-nodes.node[0]", "pg-x-nodes.node-[0]", "pg-x-nodes.node-a[0]", "pg-x-nodes.node--1[0]", "pg-x-nodes.node-1"} {
		if _, err := nodeIndex(name); err == nil {
			t.Errorf("nodeIndex(%q) accepted", name)
		}
	}
}

func TestBaseBackupJobIDIsStablePerBaseBackup(t *testing.T) {
	if got := BaseBackupJobID("0123456789ab", "5f0c"); got != "pg-0123456789ab-basebackup-5f0c" {
		t.Errorf("BaseBackupJobID = %q", got)
	}
}

// TestBaseBackupOfAStarterInstanceReadsItsNodeAndReturnsTheNewLabel: the
// job runs on the recorded node's client with its node index and port, gets
// the repository's keys through its Variable only, and the label is the
// last of the info the job printed.
func TestBaseBackupOfAStarterInstanceReadsItsNodeAndReturnsTheNewLabel(t *testing.T) {
	n := newFakeNomad()
	in := instanceWithAdmin(n)
	n.jobs[naming.NodesJobID("abc")] = nomadJob(naming.NodesJobID("abc"))
	n.services[naming.NodeService("abc")] = []*api.ServiceRegistration{
		{NodeID: "client-2", AllocID: "a2", Address: "10.0.0.2", Port: 5433},
		{NodeID: "client-1", AllocID: "a1", Address: "10.0.0.1", Port: 5432},
	}
	n.logs["basebackup.stdout"] = infoTwoBackups
	jobID := BaseBackupJobID("abc", "bb1")
	var whileRunning map[string]string
	n.outcome = func(string) error { whileRunning = n.vars[jobSecretPath(jobID)]; return nil }
	b := New(n, Config{DataRoot: "/srv/pg", PostgresUID: 101, PITRS3: &PITRS3{Host: "s3", Port: 443, Path: "/r",
		AccessKeyID: "AKIAPITR", SecretAccessKey: "pitr-secret"}}, Hooks{CA: func() *pki.CA { return nil }}, slog.New(slog.DiscardHandler))
	label, err := b.BaseBackup(context.Background(), in, "bb1")
	if err != nil || label != "20261123-020000F" {
		t.Fatalf("BaseBackup = %q, %v", label, err)
	}
	vars := n.parsed[jobID]
	if vars["node_id"] != "client-1" || vars["node_index"] != 1 || vars["pg_port"] != 5432 || vars["pitr_repo"] != "/r" || vars["data_root"] != "/srv/pg" {
		t.Errorf("base backup job variables %v", vars)
	}
	if rendered := fmt.Sprint(vars); strings.Contains(rendered, "pitr-secret") || strings.Contains(rendered, "AKIAPITR") {
		t.Fatalf("keys among the job variables: %s", rendered)
	}
	if whileRunning[itemPITRS3Key] != "AKIAPITR" || whileRunning[itemPITRS3KeySecret] != "pitr-secret" || whileRunning["admin_password"] != "admin-pw" {
		t.Fatalf("base backup job Variable %v", whileRunning)
	}
	if _, err := New(n, Config{}, Hooks{}, nil).BaseBackup(context.Background(), in, "bb2"); err == nil {
		t.Fatal("BaseBackup without a repository succeeded")
	}
}

func TestBaseBackupWithoutARegisteredNodeIsWorthRetrying(t *testing.T) {
	n := newFakeNomad()
	in := instanceWithAdmin(n)
	n.jobs[naming.NodesJobID("abc")] = nomadJob(naming.NodesJobID("abc"))
	b := New(n, Config{PITRRepo: "/srv/r"}, Hooks{CA: func() *pki.CA { return nil }}, slog.New(slog.DiscardHandler))
	_, err := b.BaseBackup(context.Background(), in, "bb1")
	if err == nil || !strings.Contains(err.Error(), "no node of the instance is registered") {
		t.Fatalf("BaseBackup = %v", err)
	}
	if _, left := n.vars[jobSecretPath(BaseBackupJobID("abc", "bb1"))]; left {
		t.Fatal("the Variable of a job that was never registered is left behind")
	}
}
