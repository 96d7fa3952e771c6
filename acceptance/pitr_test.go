package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
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

	list := waitFirstBaseBackup(t, b, id)
	t.Logf("first base backup: PITR from %s", list.PITR.EarliestTargetTime.Format(time.RFC3339Nano))
	assertNoBatchJobsLeft(t, id, "basebackup")

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
	var restore mgmtapi.PITRRestore
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
	short := naming.ShortID(id)
	for _, dir := range []string{"archive", "backup"} {
		if exists(filepath.Join(dataRoot, "pgbackrest", dir, short)) {
			t.Errorf("pgBackRest %s of the instance left after deprovisioning", dir)
		}
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// waitFirstBaseBackup waits (3 minutes at most) until the backups API of
// instance id offers point-in-time restores (earliest_target_time: its
// first base backup succeeded) and returns that answer.
func waitFirstBaseBackup(t *testing.T, b *broker, id string) mgmtapi.BackupList {
	t.Helper()
	var list mgmtapi.BackupList
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		b.apiJSON(http.MethodGet, backupsPath(id), &list)
		if list.PITR != nil && list.PITR.EarliestTargetTime != nil {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("no base backup within 3 minutes: %+v", list.PITR)
		}
	}
}

// TestBusinessBaseBackupRunsAsABatchJob: the first weekly base backup of a
// Business instance (Patroni, two nodes) succeeds, taken from the standby
// (issue #4 item 2): its batch job runs on the standby's client, pgBackRest
// records it as a backup-standby backup, and the job is purged with its
// Nomad Variable afterwards; a point-in-time restore target after it is
// accepted by the API's checks (earliest_target_time is set). The node
// job's spec holds no key of the pgBackRest TLS server.
func TestBusinessBaseBackupRunsAsABatchJob(t *testing.T) {
	b := newBroker(t, "PGBROKER_BACKUP_SCHEDULE_TICK=1s")
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	clients := watchBatchClients(t, short, "basebackup")
	provisionWithin(t, c, id, businessPlan, 5*time.Minute)
	defer deprovision(t, c, id, businessPlan)
	list := waitFirstBaseBackup(t, b, id)
	t.Logf("first base backup: PITR from %s", list.PITR.EarliestTargetTime.Format(time.RFC3339Nano))
	assertNoBatchJobsLeft(t, id, "basebackup")
	ran := clients()
	creds := bind(t, c, id, uuid.NewString(), businessPlan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	leading := leaderAlloc(t, app, runningAllocs(t, provisioner.NodesJobID(short)))
	app.Close(context.Background())
	if len(ran) != 1 || ran[0] == leading.NodeID {
		t.Errorf("the base backup job ran on clients %v, want one, not the leader's (%s)", ran, leading.NodeID)
	}
	manifests, err := filepath.Glob(filepath.Join(dataRoot, "pgbackrest", "backup", short, "*F", "backup.manifest"))
	if err != nil || len(manifests) != 1 {
		t.Fatalf("base backup manifests %v (%v), want one", manifests, err)
	}
	manifest, err := os.ReadFile(manifests[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(manifest), "option-backup-standby=true") {
		t.Errorf("%s does not record a backup from the standby (option-backup-standby=true)", manifests[0])
	}
	job, _, err := nomadClient(t).Jobs().Info(provisioner.NodesJobID(short), nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(job)
	if strings.Contains(string(spec), "PRIVATE KEY") {
		t.Error("the node job's spec holds a private key")
	}
}

// TestProvisionRestoreFromAPointInTimeOfAnotherInstance: rows committed at
// T1, T2 and T3 on instance A; instance B provisioned with restore_from
// {instance_id: A, point_in_time: between T2 and T3} holds the T1 and T2
// rows and not the T3 one, is writable through its own binding, and A's
// binding credentials do not open it. restore_from naming A from another
// space or organization is a 422 with the reason, a point_in_time outside
// A's window a 422 naming it, both or neither of backup_id and
// point_in_time a 400; none of them creates anything. The broker is
// SIGKILLed right after it registered B's restoring node job
// (pitr:registered) and restarted: the provision finishes, once.
func TestProvisionRestoreFromAPointInTimeOfAnotherInstance(t *testing.T) {
	b := newBroker(t, "PGBROKER_BACKUP_SCHEDULE_TICK=1s")
	c := b.client()
	const plan = "postgresql-starter-512"
	source := uuid.NewString()
	provision(t, c, source, plan)
	defer deprovision(t, c, source, plan)

	list := waitFirstBaseBackup(t, b, source)
	sourceCreds := bind(t, c, source, uuid.NewString(), plan, nil)
	app := connect(t, sourceCreds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	committed := func(id int) time.Time {
		mustExec(t, app, fmt.Sprintf("INSERT INTO items VALUES (%d, 'committed at T%d')", id, id))
		var at time.Time
		if err := app.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&at); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		return at
	}
	t1, t2 := committed(1), committed(2)
	var target time.Time
	if err := app.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	t3 := committed(3)
	t.Logf("T1 %s, T2 %s, target %s, T3 %s", t1.Format(time.RFC3339Nano), t2.Format(time.RFC3339Nano),
		target.Format(time.RFC3339Nano), t3.Format(time.RFC3339Nano))

	at := func(tm time.Time) string { return tm.UTC().Format(time.RFC3339Nano) }
	body := func(org, space, restoreFrom string) string {
		return fmt.Sprintf(`{"service_id":"postgresql","plan_id":%q,"organization_guid":%q,"space_guid":%q,"parameters":{"restore_from":%s}}`,
			plan, org, space, restoreFrom)
	}
	fromSource := func(extra string) string { return fmt.Sprintf(`{"instance_id":%q%s}`, source, extra) }
	for _, bad := range []struct {
		body   string
		status int
		says   string
	}{
		{body("org-acceptance", "another-space", fromSource(`,"point_in_time":"`+at(target)+`"`)), http.StatusUnprocessableEntity, "another organization or space"},
		{body("another-org", "space-acceptance", fromSource(`,"point_in_time":"`+at(target)+`"`)), http.StatusUnprocessableEntity, "another organization or space"},
		{body("org-acceptance", "space-acceptance", fromSource(`,"point_in_time":"yesterday"`)), http.StatusBadRequest, "restore_from.point_in_time"},
		{body("org-acceptance", "space-acceptance", fromSource(`,"point_in_time":"`+at(time.Now().Add(time.Hour))+`"`)), http.StatusUnprocessableEntity, "restore_from.point_in_time"},
		{body("org-acceptance", "space-acceptance", fromSource(`,"point_in_time":"`+at(list.PITR.EarliestTargetTime.Add(-time.Minute))+`"`)), http.StatusUnprocessableEntity, "restore_from.point_in_time"},
		{body("org-acceptance", "space-acceptance", fromSource(`,"point_in_time":"`+at(target)+`","backup_id":"x"`)), http.StatusBadRequest, "exactly one of"},
		{body("org-acceptance", "space-acceptance", fromSource("")), http.StatusBadRequest, "exactly one of"},
	} {
		id := uuid.NewString()
		status, answer := b.raw(http.MethodPut, "/v2/service_instances/"+id+"?accepts_incomplete=true", bad.body, nil)
		if status != bad.status || !strings.Contains(answer, bad.says) {
			t.Errorf("provision with %s: %d %s, want %d saying %q", bad.body, status, answer, bad.status, bad.says)
		}
		if jobs, _, err := nomadClient(t).Jobs().PrefixList("pg-" + naming.ShortID(id)); err != nil || len(jobs) != 0 {
			t.Errorf("refused provision left %d jobs (%v)", len(jobs), err)
		}
		if status, _ := b.raw(http.MethodGet, "/v2/service_instances/"+id+"/last_operation", "", nil); status != http.StatusGone && status != http.StatusNotFound {
			t.Errorf("refused provision: last_operation %d, want no instance", status)
		}
	}

	b.stop()
	b.env = append(b.env, append(crashEnv, "PGBROKER_CRASH_AT=pitr:registered")...)
	b.start()
	copyID := uuid.NewString()
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: copyID, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan,
		OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance",
		Parameters: map[string]any{"restore_from": map[string]any{"instance_id": source, "point_in_time": at(target)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	crashAndRestart(t, b, "pitr:registered")
	waitOperation(t, c, copyID, resp.OperationKey, 6*time.Minute)
	if n := nodeJobVersions(t, copyID); n != 1 {
		t.Errorf("the copy's node job was registered for its restore %d times, want once", n)
	}
	defer deprovision(t, c, copyID, plan)
	copyCreds := bind(t, c, copyID, uuid.NewString(), plan, nil)
	rw := connect(t, copyCreds["DATABASE_URL"].(string))
	var ids []int
	rows, err := rw.Query(context.Background(), "SELECT id FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || fmt.Sprint(ids) != "[1 2]" {
		t.Fatalf("the copy holds items %v (%v), want [1 2]: the T1 and T2 rows, not the T3 one", ids, rows.Err())
	}
	mustExec(t, rw, "INSERT INTO items VALUES (4, 'written in the copy')")
	if count(t, app, "items") != 3 {
		t.Errorf("the source changed")
	}

	// The source's binding role did not come along with its data.
	copyURL := withRootCert(copyCreds["DATABASE_URL"].(string))
	u, _ := url.Parse(copyURL)
	su, _ := url.Parse(sourceCreds["DATABASE_URL"].(string))
	u.User = su.User
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, u.String()); err == nil {
		conn.Close(ctx)
		t.Error("the source's binding credentials open the copy")
	}
}

// nodeJobVersions counts the versions of the instance's node job that carry
// a point-in-time restore (Meta pgbroker_pitr_restore set).
func nodeJobVersions(t *testing.T, instanceID string) int {
	t.Helper()
	n := 0
	for _, v := range jobVersions(t, provisioner.NodesJobID(naming.ShortID(instanceID))) {
		if v.Meta[provisioner.MetaPITRRestore] != "" {
			n++
		}
	}
	return n
}
