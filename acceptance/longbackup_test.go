package acceptance

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgbroker/pgbroker/backup"
	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
)

// TestADumpOutlastingItsAttemptsSucceedsAndOnePastItsLimitIsStoppedFirst:
// with 4 s attempts retried after 1 s, a dump blocked for 25 s by a
// tenant's lock (pg_dump waits for its ACCESS SHARE lock) outlasts more
// attempts than a dump has (5: counted ones would have failed it by 24 s),
// is never recorded failed and ends succeeded. A dump blocked past its time
// limit (PGBROKER_BACKUP_TIME_BASE 45 s, nothing per GiB) is recorded
// failed naming the limit, and by then its Nomad job is gone (issue 12,
// "long work has honest outcomes").
func TestADumpOutlastingItsAttemptsSucceedsAndOnePastItsLimitIsStoppedFirst(t *testing.T) {
	t.Parallel()
	b := newBroker(t, "PGBROKER_BACKUP_TIME_BASE=45s", "PGBROKER_MAX_RETRY_DELAY=1s", "PGBROKER_BACKUP_TIME_PER_GIB=0s")
	c := b.client()
	id := uuid.NewString()
	provision(t, c, id, starterPlan)
	t.Cleanup(func() { deprovision(t, c, id, starterPlan) })
	removeDumps(t, id)
	url := bind(t, c, id, uuid.NewString(), starterPlan, nil)["DATABASE_URL"].(string)
	app := connect(t, url)
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 100) g")
	b.restartWith("PGBROKER_ATTEMPT_TIMEOUT", "4s")

	// lockItems holds ACCESS EXCLUSIVE on items until the returned func runs.
	lockItems := func() (release func()) {
		conn := connect(t, url)
		tx, err := conn.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(context.Background(), "LOCK TABLE items IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		return func() { _ = tx.Rollback(context.Background()) }
	}
	ask := func() mgmtapi.Backup {
		var asked mgmtapi.Backup
		if status := b.apiJSON(http.MethodPost, backupsPath(id), &asked); status != http.StatusAccepted {
			t.Fatalf("POST backups: %d, want 202", status)
		}
		return asked
	}
	get := func(backupID string) mgmtapi.Backup {
		var got mgmtapi.Backup
		if status := b.apiJSON(http.MethodGet, backupsPath(id)+"/"+backupID, &got); status != http.StatusOK {
			t.Fatalf("GET backup: %d", status)
		}
		return got
	}

	release := lockItems()
	slow := ask()
	time.Sleep(25 * time.Second)
	if got := get(slow.ID); got.Status != "running" {
		release()
		t.Fatalf("a dump blocked for 25 s with 4 s attempts is %q (%s), want running", got.Status, got.Error)
	}
	waits := strings.Count(b.logs.String(), "the dump job is still running")
	release()
	done := waitBackup(t, b, id, slow.ID, 2*time.Minute)
	if waits < 5 {
		t.Errorf("the dump outlasted %d attempts, want at least 5 (the test did not test what it says)", waits)
	}
	if done.SizeBytes <= 0 || len(done.SHA256) != 64 {
		t.Errorf("succeeded dump = %+v, want its size and SHA-256", done)
	}
	t.Logf("a dump blocked 25 s outlasted %d attempts of 4 s and succeeded (%d bytes)", waits, done.SizeBytes)

	release = lockItems()
	defer release()
	stuck := ask()
	jobID := backup.DumpJobID(naming.ShortID(id), stuck.ID)
	var failed mgmtapi.Backup
	waitFor(t, 2*time.Minute, "the dump past its 45 s limit to be recorded failed", func() bool {
		failed = get(stuck.ID)
		return failed.Status == "failed"
	})
	if job, _, err := nomadClient(t).Jobs().Info(jobID, nil); err == nil && (job.Stop == nil || !*job.Stop) {
		t.Errorf("the dump was recorded failed while its job %s is still registered", jobID)
	}
	allocs, _, _ := nomadClient(t).Jobs().Allocations(jobID, true, nil) // a purged job may list none
	for _, a := range allocs {
		if a.ClientStatus == "running" || a.ClientStatus == "pending" {
			t.Errorf("the dump was recorded failed while allocation %s of its job is %s", a.ID, a.ClientStatus)
		}
	}
	if !strings.Contains(failed.Error, "did not finish within 45s") {
		t.Errorf("failed dump's error %q does not name its limit", failed.Error)
	}
	if failed.StartedAt == nil || failed.FinishedAt == nil || failed.FinishedAt.Sub(*failed.StartedAt) < 45*time.Second {
		t.Errorf("failed dump = %+v: want it to have run its whole 45 s", failed)
	}
	assertNoBatchJobsLeft(t, id, "dump")
}
