package acceptance

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/backupapi"
	"github.com/pgbroker/pgbroker/provisioner"
)

// TestPointInTimeRestoreGivesBackTheRowsAtThatTime: once the first weekly
// base backup is taken, rows written, a moment T noted, rows changed; a
// point-in-time restore to T gives back exactly the rows at T, through the
// same credentials; a target before the first base backup or in the future
// is refused naming target_time.
func TestPointInTimeRestoreGivesBackTheRowsAtThatTime(t *testing.T) {
	b := newBroker(t, "PGBROKER_BACKUP_SCHEDULE_TICK=1s")
	c := b.client()
	id := uuid.NewString()
	const plan = "postgresql-starter-512"
	provision(t, c, id, plan)

	var list backupapi.List
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b.apiJSON(http.MethodGet, backupsPath(id), &list)
		if list.PITR != nil && list.PITR.EarliestTargetTime != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no base backup within 3 minutes: %+v", list.PITR)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("first base backup: PITR from %s", list.PITR.EarliestTargetTime.Format(time.RFC3339Nano))

	creds := bind(t, c, id, uuid.NewString(), plan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
	atT := tableChecksum(t, app)
	var target time.Time
	if err := app.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	mustExec(t, app, "UPDATE items SET body = 'later' WHERE id <= 500")
	mustExec(t, app, "DELETE FROM items WHERE id > 900")
	if tableChecksum(t, app) == atT {
		t.Fatal("the changes did not change the checksum")
	}
	app.Close(context.Background())

	for _, bad := range []struct{ body, says string }{
		{`{"target_time":"yesterday"}`, "target_time"},
		{`{"target_time":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, "in the future"},
		{`{"target_time":"` + list.PITR.EarliestTargetTime.Add(-time.Minute).Format(time.RFC3339) + `"}`, "before the earliest"},
		{`{"when":"now"}`, "target_time"},
	} {
		status, body := b.raw(http.MethodPost, backupsPath(id)+"/pitr-restore", bad.body, nil)
		if status/100 != 4 || !strings.Contains(body, bad.says) {
			t.Errorf("pitr-restore %s: %d %s, want a 4xx saying %q", bad.body, status, body, bad.says)
		}
	}

	status, body := b.raw(http.MethodPost, backupsPath(id)+"/pitr-restore",
		`{"target_time":"`+target.UTC().Format(time.RFC3339Nano)+`"}`, nil)
	if status != http.StatusAccepted {
		t.Fatalf("pitr-restore: %d %s", status, body)
	}
	var restore backupapi.PITRRestore
	if err := jsonUnmarshal(body, &restore); err != nil {
		t.Fatal(err)
	}
	op := osb.OperationKey(restore.Operation)
	waitOperation(t, c, id, &op, 5*time.Minute)
	app = connect(t, creds["DATABASE_URL"].(string))
	if got := tableChecksum(t, app); got != atT {
		t.Fatalf("after the point-in-time restore items checksum %s, want %s (at %s)", got, atT, target)
	}
	mustExec(t, app, "INSERT INTO items VALUES (5000, 'writable after the restore')")
	app.Close(context.Background())

	// No point-in-time restore of a deprovisioned instance is offered: its stanza goes with it.
	deprovision(t, c, id, plan)
	short := provisioner.ShortID(id)
	for _, dir := range []string{"archive", "backup"} {
		if exists(filepath.Join(dataRoot, "pgbackrest", dir, short)) {
			t.Errorf("pgBackRest %s of the instance left after deprovisioning", dir)
		}
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
