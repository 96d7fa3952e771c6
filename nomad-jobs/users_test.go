package nomadjobs_test

import (
	"strings"
	"testing"
)

// TestEveryTaskRunsAsANamedUserOtherThanRoot: on the raw_exec profile (the
// one that runs host binaries), every task of every job file sets user, and
// never root: the batch jobs as the least-privileged user that can do their
// work (dump and restore as the backup directory's owner, which reaches
// PostgreSQL over the network only; the cleanup and the base backup as
// postgres, which owns the data directories they delete or read).
func TestEveryTaskRunsAsANamedUserOtherThanRoot(t *testing.T) {
	client := nomadClient(t)
	want := map[string]string{"dump": "pgbroker-backup", "restore": "pgbroker-backup", "cleanup": "postgres", "basebackup": "postgres", "upgrade": "postgres"}
	batch := map[string]bool{}
	for _, f := range jobFiles("raw_exec") {
		job := mustParse(t, client, f)
		for _, group := range job.TaskGroups {
			for _, task := range group.Tasks {
				if task.User == "" || task.User == "root" || strings.Trim(strings.SplitN(task.User, ":", 2)[0], "0") == "" {
					t.Errorf("%s: task %s runs as %q, want a user other than root", f.name, task.Name, task.User)
				}
				if *job.Type != "batch" {
					continue
				}
				batch[f.name] = true
				if task.User != want[f.name] {
					t.Errorf("batch job %s: task %s runs as %q, want %q", f.name, task.Name, task.User, want[f.name])
				}
			}
		}
	}
	for name := range want {
		if !batch[name] {
			t.Errorf("no batch job %s among the job files checked", name)
		}
	}
}

// TestBackupJobRefusesRoot: the dump and restore job's user variable
// cannot be set to root, by name or uid, and the error names the variable.
func TestBackupJobRefusesRoot(t *testing.T) {
	client := nomadClient(t)
	f := jobFileNamed(t, "dump")
	for _, user := range []string{"root", "0", "00", "0:0", "0:1000", "", "pg backup"} {
		if _, err := parse(t, client, f.name, f.src, varsOf(f, map[string]any{"user": user})); err == nil || !strings.Contains(err.Error(), "user") {
			t.Errorf("user %q: %v, want an error naming user", user, err)
		}
	}
	for _, user := range []string{"pgbroker-backup", "1001", "1001:1001"} {
		job, err := parse(t, client, f.name, f.src, varsOf(f, map[string]any{"user": user}))
		if err != nil {
			t.Errorf("user %q: %v", user, err)
		} else if got := job.TaskGroups[0].Tasks[0].User; got != user {
			t.Errorf("user %q: the task runs as %q", user, got)
		}
	}
}
