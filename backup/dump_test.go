package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/pki"
)

const dumpS3Secret = "s3-secret/with+odd=chars"

func dumpBackups(n *fakeNomad) *Backups {
	return New(n, Config{Driver: "raw_exec", BackupDir: "/srv/dumps", BackupS3: &S3Config{Endpoint: "https://s3.example.com",
		Region: "eu-west-3", Bucket: "dumps", Prefix: "prod", AccessKeyID: "AKIADUMPS", SecretAccessKey: dumpS3Secret, PartSizeMiB: 64}},
		Hooks{GatewayAddress: func(context.Context, string) (string, error) { return "10.0.0.7", nil },
			CA: func() *pki.CA { return dumpCA }}, slog.New(slog.DiscardHandler))
}

// dumpCA is the broker's CA as the backup jobs see it.
var dumpCA = func() *pki.CA {
	certPEM, keyPEM, err := pki.NewCA("pgbroker test CA", time.Hour, time.Now())
	if err != nil {
		panic(err)
	}
	ca, err := pki.ParseCA(certPEM, keyPEM, time.Now())
	if err != nil {
		panic(err)
	}
	return ca
}()

func instanceWithAdmin(n *fakeNomad) Instance {
	n.vars[naming.NodesSecretPath("abc")] = map[string]string{"admin_password": "admin-pw", "replication_password": "repl-pw"}
	return Instance{ShortID: "abc", GatewayPort: 31000, NodeID: "client-1"}
}

// TestDumpJobGetsItsKeysOnlyThroughItsVariable: the dump job's variables
// locate the object (prefix, then naming.DumpKey) and never hold a secret;
// its own Variable holds the admin password and the S3 keys while it runs,
// and is gone with the job once it completed.
func TestDumpJobGetsItsKeysOnlyThroughItsVariable(t *testing.T) {
	n := newFakeNomad()
	in := instanceWithAdmin(n)
	jobID := DumpJobID("abc", "b1")
	var whileRunning map[string]string
	n.outcome = func(string) error { whileRunning = n.vars[jobSecretPath(jobID)]; return nil }
	if err := dumpBackups(n).Dump(context.Background(), in, "b1", func(string) {}); err != nil {
		t.Fatal(err)
	}
	vars := n.parsed[jobID]
	want := map[string]any{"mode": "dump", "backup_id": "b1", "backup_dir": "/srv/dumps", "node_id": "client-1", "pg_host": "10.0.0.7",
		"pg_port": 31000, "s3_endpoint": "https://s3.example.com", "s3_region": "eu-west-3", "s3_bucket": "dumps",
		"s3_object": "prod/abc/b1.dump", "s3_part_size_mib": 64, "instance": "abc", "driver": "raw_exec"}
	for k, v := range want {
		if fmt.Sprint(vars[k]) != fmt.Sprint(v) {
			t.Errorf("job variable %s = %v, want %v", k, vars[k], v)
		}
	}
	if rendered := fmt.Sprint(vars); strings.Contains(rendered, "AKIADUMPS") || strings.Contains(rendered, dumpS3Secret) || strings.Contains(rendered, "admin-pw") {
		t.Fatalf("a secret among the job variables:\n%s", rendered)
	}
	if whileRunning["admin_password"] != "admin-pw" || whileRunning["s3_access_key_id"] != "AKIADUMPS" || whileRunning["s3_secret_access_key"] != dumpS3Secret {
		t.Fatalf("the job's Variable while it ran: %v", whileRunning)
	}
	assertJobGone(t, n, jobID)
}

// assertJobGone fails t unless jobID was purged and its Variable deleted.
func assertJobGone(t *testing.T, n *fakeNomad, jobID string) {
	t.Helper()
	if _, left := n.vars[jobSecretPath(jobID)]; left || !slices.Contains(n.purged, jobID) {
		t.Fatalf("job %s or its Variable left behind: purged %v, Variable left %v", jobID, n.purged, left)
	}
}

// TestFailedDumpReportsTheEndOfItsStandardError: a failed job is a
// *nomad.JobFailedError carrying its standard error's tail on one line, and
// is purged with its Variable so that the next attempt runs it again.
func TestFailedDumpReportsTheEndOfItsStandardError(t *testing.T) {
	n := newFakeNomad()
	in := instanceWithAdmin(n)
	jobID := DumpJobID("abc", "b1")
	n.outcome = func(id string) error {
		return &nomad.JobFailedError{JobID: id, AllocID: "a1", Event: "Terminated: Exit Code: 1"}
	}
	n.logs["dump.stderr"] = strings.Repeat("x", 600) + "\npg_dump: error: connection to server failed\n\tFATAL:  too many connections\n"
	err := dumpBackups(n).Dump(context.Background(), in, "b1", func(string) {})
	var failed *nomad.JobFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("Dump = %v, want a JobFailedError", err)
	}
	if !strings.HasSuffix(failed.Stderr, "pg_dump: error: connection to server failed FATAL: too many connections") || len(failed.Stderr) > 512 {
		t.Errorf("Stderr = %q, want the last 512 bytes on one line", failed.Stderr)
	}
	if !strings.Contains(err.Error(), "too many connections") {
		t.Errorf("error %q does not say why", err)
	}
	assertJobGone(t, n, jobID)
}

// TestDumpWaitsForAJobRegisteredBeforeARestart: a job of the same id that
// is registered and not stopped is waited for, never registered twice.
func TestDumpWaitsForAJobRegisteredBeforeARestart(t *testing.T) {
	n := newFakeNomad()
	in := instanceWithAdmin(n)
	jobID := DumpJobID("abc", "b1")
	n.jobs[jobID] = nomadJob(jobID)
	if err := dumpBackups(n).Dump(context.Background(), in, "b1", func(string) {}); err != nil {
		t.Fatal(err)
	}
	if n.register != 0 {
		t.Fatalf("registered %d times, want the running job waited for", n.register)
	}
}

// TestUnreachableNomadLeavesTheDumpJobForTheNextAttempt: an error that is
// not the job's failure (Nomad down, ctx ended) keeps job and Variable.
func TestUnreachableNomadLeavesTheDumpJobForTheNextAttempt(t *testing.T) {
	n := newFakeNomad()
	in := instanceWithAdmin(n)
	jobID := DumpJobID("abc", "b1")
	n.outcome = func(string) error { return errors.New("connection refused") }
	if err := dumpBackups(n).Dump(context.Background(), in, "b1", func(string) {}); err == nil {
		t.Fatal("Dump succeeded while Nomad was unreachable")
	}
	if _, ok := n.vars[jobSecretPath(jobID)]; !ok || len(n.purged) != 0 {
		t.Fatalf("job purged %v or Variable deleted before the job ended", n.purged)
	}
}

type fakeRole struct{ opened, closed []string }

func (r *fakeRole) Open(_ context.Context, password string) error {
	r.opened = append(r.opened, password)
	return nil
}
func (r *fakeRole) Close(context.Context) error { r.closed = append(r.closed, "closed"); return nil }

// TestRestoreFromAnotherInstanceLogsInAsTheRestoreRole: the restore job of
// another instance's dump reads that instance's object, names it as
// source_instance, gets the restore role's password and not the admin's,
// and the role is closed even when pg_restore failed.
func TestRestoreFromAnotherInstanceLogsInAsTheRestoreRole(t *testing.T) {
	n := newFakeNomad()
	in := instanceWithAdmin(n)
	jobID := RestoreJobID("abc", "op1")
	var whileRunning map[string]string
	n.outcome = func(id string) error {
		whileRunning = n.vars[jobSecretPath(jobID)]
		return &nomad.JobFailedError{JobID: id, Event: "Terminated: Exit Code: 1"}
	}
	role := &fakeRole{}
	err := dumpBackups(n).Restore(context.Background(), in, "op1", "b1", "src", role, func(string) {})
	var failed *nomad.JobFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("Restore = %v, want a JobFailedError", err)
	}
	vars := n.parsed[jobID]
	if vars["mode"] != "restore" || vars["source_instance"] != "src" || vars["s3_object"] != "prod/src/b1.dump" || vars["s3_part_size_mib"] != nil {
		t.Errorf("restore job variables %v", vars)
	}
	if _, ok := whileRunning["admin_password"]; ok || len(role.opened) != 1 || whileRunning[restorePasswordItem] != role.opened[0] || len(role.opened[0]) != 32 {
		t.Errorf("restore job Variable %v, role opened with %v", whileRunning, role.opened)
	}
	if len(role.closed) != 1 {
		t.Errorf("restore role closed %d times, want once", len(role.closed))
	}
}

func TestS3ObjectNamesPutThePrefixBeforeTheKey(t *testing.T) {
	for prefix, want := range map[string]string{"": "abc/b1.dump", "prod": "prod/abc/b1.dump", "prod/": "prod/abc/b1.dump", "a/b": "a/b/abc/b1.dump"} {
		c := &S3Config{Prefix: prefix}
		if got := c.ObjectName("abc/b1.dump"); got != want {
			t.Errorf("prefix %q: object %q, want %q", prefix, got, want)
		}
	}
}

// TestDumpAndRestoreJobsRunAsTheBackupUser: the configured backup user
// reaches both modes' job variables; unset, none is passed and the job
// file's own default (pgbroker-backup, never root) applies.
func TestDumpAndRestoreJobsRunAsTheBackupUser(t *testing.T) {
	for _, user := range []string{"dumper", ""} {
		n := newFakeNomad()
		in := instanceWithAdmin(n)
		b := dumpBackups(n)
		b.cfg.BackupUser = user
		if err := b.Dump(context.Background(), in, "b1", func(string) {}); err != nil {
			t.Fatal(err)
		}
		_ = b.Restore(context.Background(), in, "op1", "b1", "", &fakeRole{}, func(string) {})
		for _, jobID := range []string{DumpJobID("abc", "b1"), RestoreJobID("abc", "op1")} {
			got, ok := n.parsed[jobID]["user"]
			if (user == "" && ok) || (user != "" && got != user) {
				t.Errorf("BackupUser %q: job %s variable user = %v (set: %v)", user, jobID, got, ok)
			}
		}
	}
}
