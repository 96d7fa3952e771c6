package acceptance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/store"
)

// backupsPath is the backups API of an instance.
func backupsPath(id string) string { return "/api/instances/" + url.PathEscape(id) + "/backups" }

// apiJSON sends a request to the management API and decodes a JSON answer into out.
func (b *broker) apiJSON(method, path string, out any) int {
	b.t.Helper()
	status, body := b.raw(method, path, "", nil)
	if out != nil && status < 300 {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			b.t.Fatalf("%s %s: %d %s: %v", method, path, status, body, err)
		}
	}
	return status
}

// waitBackup polls a backup until it succeeded; failed is fatal.
func waitBackup(t *testing.T, b *broker, instanceID, backupID string, limit time.Duration) mgmtapi.Backup {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var got mgmtapi.Backup
		if status := b.apiJSON(http.MethodGet, backupsPath(instanceID)+"/"+backupID, &got); status != 200 {
			t.Fatalf("GET backup: %d", status)
		}
		switch got.Status {
		case "succeeded":
			return got
		case "failed":
			t.Fatalf("backup failed: %s", got.Error)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("backup %s did not succeed within %s", backupID, limit)
	return mgmtapi.Backup{}
}

// askRestore asks for the in-place restore of backupID and returns its
// operation.
func askRestore(t testing.TB, b *broker, instanceID, backupID string) osb.OperationKey {
	t.Helper()
	var restore mgmtapi.Restore
	if status := b.apiJSON(http.MethodPost, backupsPath(instanceID)+"/"+backupID+"/restore", &restore); status != http.StatusAccepted {
		t.Fatalf("POST restore: %d, want 202", status)
	}
	return osb.OperationKey(restore.Operation)
}

// manualDump asks for a manual dump and waits for it.
func manualDump(t *testing.T, b *broker, instanceID string) mgmtapi.Backup {
	t.Helper()
	var asked mgmtapi.Backup
	if status := b.apiJSON(http.MethodPost, backupsPath(instanceID), &asked); status != http.StatusAccepted {
		t.Fatalf("POST backups: %d, want 202", status)
	}
	if asked.Kind != "manual" || (asked.Status != "pending" && asked.Status != "running") {
		t.Fatalf("asked backup = %+v, want a pending manual backup", asked)
	}
	done := waitBackup(t, b, instanceID, asked.ID, 3*time.Minute)
	if done.SizeBytes <= 0 || len(done.SHA256) != 64 || done.FinishedAt == nil || done.DownloadURL == "" {
		t.Fatalf("succeeded backup = %+v, want size, sha256, finished_at and download_url", done)
	}
	return done
}

// tableChecksum is an md5 over every row of items, in id order.
func tableChecksum(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var sum string
	err := conn.QueryRow(context.Background(),
		`SELECT md5(coalesce(string_agg(id || ':' || body, ',' ORDER BY id), '')) || ':' || count(*) FROM items`).Scan(&sum)
	if err != nil {
		t.Fatalf("checksum items: %v", err)
	}
	return sum
}

// removeDumps deletes the instance's dumps from the stack's backup directory
// (retention would keep them for weeks).
func removeDumps(t *testing.T, instanceID string) {
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join(backupRoot, naming.ShortID(instanceID))) })
}

// TestDumpChangeRowsRestoreGivesBackTheRowsAtDumpTime: a manual dump, then
// rows changed, then the dump restored through the API: the table holds
// exactly what it held at dump time; the download restores with stock
// pg_restore into a scratch database; backup health and the metric show
// the dump.
func TestDumpChangeRowsRestoreGivesBackTheRowsAtDumpTime(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	const plan = "postgresql-starter-512"
	provision(t, c, id, plan)
	removeDumps(t, id)
	defer deprovision(t, c, id, plan)
	creds := bind(t, c, id, uuid.NewString(), plan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 2000) g")
	atDump := tableChecksum(t, app)

	dump := manualDump(t, b, id)
	t.Logf("dump %s: %d bytes, sha256 %s", dump.ID, dump.SizeBytes, dump.SHA256)

	mustExec(t, app, "UPDATE items SET body = 'changed' WHERE id % 3 = 0")
	mustExec(t, app, "DELETE FROM items WHERE id > 1500")
	mustExec(t, app, "INSERT INTO items VALUES (5000, 'new')")
	if tableChecksum(t, app) == atDump {
		t.Fatal("the changes did not change the checksum")
	}
	app.Close(context.Background())

	t.Run("DownloadRestoresWithStockPgRestore", func(t *testing.T) {
		downloadAndRestoreInScratch(t, b, id, dump, atDump)
	})

	op := askRestore(t, b, id, dump.ID)
	waitOperation(t, c, id, &op, 3*time.Minute)
	lo, err := c.PollLastOperation(&osb.LastOperationRequest{InstanceID: id})
	if err != nil || lo.State != osb.StateSucceeded || lo.Description == nil || !strings.Contains(*lo.Description, dump.ID) {
		t.Errorf("last_operation after restore = %+v, %v; want succeeded naming the backup", lo, err)
	}
	app = connect(t, creds["DATABASE_URL"].(string))
	if got := tableChecksum(t, app); got != atDump {
		t.Fatalf("after restore items checksum %s, want %s (dump time)", got, atDump)
	}
	mustExec(t, app, "INSERT INTO items VALUES (6000, 'the binding still writes after the restore')")

	assertNoBatchJobsLeft(t, id)

	var list mgmtapi.BackupList
	if status := b.apiJSON(http.MethodGet, backupsPath(id), &list); status != 200 {
		t.Fatalf("list: %d", status)
	}
	if len(list.Backups) != 1 || list.Health.Stale || list.Health.LastSuccessAt == nil || list.Schedule == nil ||
		list.Schedule.BackupTime != "01:00" || list.Schedule.BackupTimeZone != "Europe/Paris" {
		t.Errorf("list = %+v, want one backup, fresh health and the default schedule", list)
	}
	status, metrics := b.raw(http.MethodGet, "/metrics", "", nil)
	want := fmt.Sprintf(`pgbroker_backup_last_success_timestamp_seconds{instance_id="%s"}`, id)
	if status != 200 || !strings.Contains(metrics, want) {
		t.Errorf("/metrics (%d) lacks %s", status, want)
	}
}

func downloadAndRestoreInScratch(t *testing.T, b *broker, instanceID string, dump mgmtapi.Backup, want string) {
	req, _ := http.NewRequest(http.MethodGet, b.url+dump.DownloadURL, nil)
	req.SetBasicAuth(brokerUser, brokerPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("download: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	file := filepath.Join(t.TempDir(), "dump")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != dump.SHA256 || n != dump.SizeBytes {
		t.Fatalf("downloaded %d bytes with sha256 %s, recorded %d and %s", n, sum, dump.SizeBytes, dump.SHA256)
	}
	scratch := "pgbroker_scratch_" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	execState(t, "CREATE DATABASE "+scratch)
	t.Cleanup(func() { dropScratch(t, scratch) })
	u, _ := url.Parse(stateURL)
	u.Path = "/" + scratch
	pgRestore, err := exec.LookPath("pg_restore")
	if err != nil {
		pgRestore = "/usr/lib/postgresql/15/bin/pg_restore"
	}
	out, err := exec.Command(pgRestore, "--no-owner", "--no-acl", "--exit-on-error", "--dbname", u.String(), file).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_restore into a scratch database: %v\n%s", err, out)
	}
	conn := connect(t, u.String())
	if got := tableChecksum(t, conn); got != want {
		t.Fatalf("scratch items checksum %s, want %s (dump time)", got, want)
	}
}

// assertNoBatchJobsLeft: the batch jobs of the instance of the given kinds
// ("dump", "restore", "basebackup"; dump and restore when none is given) and
// their Nomad Variables were purged once recorded.
func assertNoBatchJobsLeft(t *testing.T, instanceID string, kinds ...string) {
	t.Helper()
	nomad := nomadClient(t)
	short := naming.ShortID(instanceID)
	if len(kinds) == 0 {
		kinds = []string{"dump", "restore"}
	}
	for _, kind := range kinds {
		prefix := "pg-" + short + "-" + kind + "-"
		jobs, _, err := nomad.Jobs().PrefixList(prefix)
		if err != nil {
			t.Fatal(err)
		}
		vars, _, err := nomad.Variables().PrefixList("nomad/jobs/"+prefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 0 || len(vars) != 0 {
			t.Errorf("%d jobs and %d variables named %s* left", len(jobs), len(vars), prefix)
		}
	}
}

// TestBackupBadInputGets4xxNamingTheField: malformed backup_time or
// backup_time_zone, unknown instance or backup ids, and backups on a Sandbox
// plan get a 4xx naming what was wrong, and change nothing; a good
// backup_time update moves the schedule.
func TestBackupBadInputGets4xxNamingTheField(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	sandbox, starter := uuid.NewString(), uuid.NewString()
	provision(t, c, sandbox, "postgresql-sandbox")
	defer deprovision(t, c, sandbox, "postgresql-sandbox")
	provision(t, c, starter, "postgresql-starter-512")
	defer deprovision(t, c, starter, "postgresql-starter-512")
	starterBody := func(params string) string {
		return `{"service_id":"postgresql","plan_id":"postgresql-starter-512","organization_guid":"o","space_guid":"s","parameters":` + params + `}`
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		says                     string
	}{
		{"provision with a malformed backup_time", "PUT", "/v2/service_instances/" + uuid.NewString() + "?accepts_incomplete=true",
			starterBody(`{"backup_time":"25:00"}`), 400, "backup_time"},
		{"provision with an unknown time zone", "PUT", "/v2/service_instances/" + uuid.NewString() + "?accepts_incomplete=true",
			starterBody(`{"backup_time":"02:00","backup_time_zone":"Mars/Olympus"}`), 400, "backup_time_zone"},
		{"update with a malformed backup_time", "PATCH", "/v2/service_instances/" + starter + "?accepts_incomplete=true",
			`{"service_id":"postgresql","parameters":{"backup_time":"7:00"}}`, 400, "backup_time"},
		{"update with an unknown time zone", "PATCH", "/v2/service_instances/" + starter + "?accepts_incomplete=true",
			`{"service_id":"postgresql","parameters":{"backup_time_zone":"Local"}}`, 400, "backup_time_zone"},
		{"backup_time on a Sandbox plan", "PATCH", "/v2/service_instances/" + sandbox + "?accepts_incomplete=true",
			`{"service_id":"postgresql","parameters":{"backup_time":"03:00"}}`, 400, "backup_time"},
		{"backups of an unknown instance", "GET", backupsPath(uuid.NewString()), "", 404, "instance_id"},
		{"an unknown backup id", "GET", backupsPath(starter) + "/" + uuid.NewString(), "", 404, "backup_id"},
		{"download of an unknown backup id", "GET", backupsPath(starter) + "/nope/download", "", 404, "backup_id"},
		{"restore of an unknown backup id", "POST", backupsPath(starter) + "/nope/restore", "", 404, "backup_id"},
		{"manual dump on a Sandbox plan", "POST", backupsPath(sandbox), "", 422, "has no backups"},
		{"restore on a Sandbox plan", "POST", backupsPath(sandbox) + "/nope/restore", "", 422, "has no backups"},
		{"unknown route", "DELETE", backupsPath(starter), "", 405, "not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := backupStateRows(t, b)
			status, body := b.raw(tc.method, tc.path, tc.body, nil)
			if status != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%d %s, want %d saying %q", status, body, tc.status, tc.says)
			}
			if after := backupStateRows(t, b); after != before {
				t.Fatalf("state changed: %d rows before, %d after", before, after)
			}
		})
	}

	status, body := b.raw("PATCH", "/v2/service_instances/"+starter+"?accepts_incomplete=true",
		`{"service_id":"postgresql","parameters":{"backup_time":"07:30","backup_time_zone":"UTC"}}`, nil)
	if status != http.StatusAccepted {
		t.Fatalf("update backup_time: %d %s", status, body)
	}
	waitOperation(t, c, starter, nil, 3*time.Minute)
	var list mgmtapi.BackupList
	b.apiJSON(http.MethodGet, backupsPath(starter), &list)
	if list.Schedule == nil || list.Schedule.BackupTime != "07:30" || list.Schedule.BackupTimeZone != "UTC" ||
		list.Schedule.NextRunAt.UTC().Format("15:04") != "07:30" {
		t.Errorf("schedule after update = %+v, want 07:30 UTC", list.Schedule)
	}
	if list.Health.Stale || list.Health.LastSuccessAt != nil {
		t.Errorf("health of a fresh instance without dumps = %+v, want not stale", list.Health)
	}
}

// backupStateRows counts instances, operations, backups and their jobs.
func backupStateRows(t *testing.T, b *broker) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM instances) + (SELECT count(*) FROM operations)
		+ (SELECT count(*) FROM backups) + (SELECT count(*) FROM river_job WHERE kind IN ('operation', 'backup'))`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// replica starts a second pgbroker process on the same state database (a
// second replica of the same deployment), stopped when the test ends.
func (b *broker) replica() *broker {
	b.t.Helper()
	addr := freeAddr(b.t)
	r := &broker{t: b.t, url: "http://" + addr, logs: &syncBuffer{}, stateDB: b.stateDB, name: b.name}
	for _, kv := range b.env {
		if !strings.HasPrefix(kv, "PGBROKER_LISTEN=") {
			r.env = append(r.env, kv)
		}
	}
	r.env = append(r.env, "PGBROKER_LISTEN="+addr)
	suite.addLog(r.logs)
	r.start()
	b.t.Cleanup(func() {
		r.stop()
		if b.t.Failed() {
			b.t.Logf("replica log:\n%s", tail(r.logs.String(), 100))
		}
	})
	return r
}

// TestDailyBackupFiresOnceAtItsTimeWithTwoBrokers: an instance whose
// backup_time is the coming minute (UTC) gets exactly one daily dump at
// that minute, with two broker processes on one state database looking
// for due runs every second.
func TestDailyBackupFiresOnceAtItsTimeWithTwoBrokers(t *testing.T) {
	b1 := newBroker(t, "PGBROKER_BACKUP_SCHEDULE_TICK=1s")
	b2 := b1.replica()
	c := b1.client()
	id := uuid.NewString()
	const plan = "postgresql-starter-512"
	at := time.Now().UTC().Add(40 * time.Second).Truncate(time.Minute).Add(time.Minute)
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan,
		OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance",
		Parameters: map[string]any{"backup_time": at.Format("15:04"), "backup_time_zone": "UTC"},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitOperation(t, c, id, resp.OperationKey, 3*time.Minute)
	removeDumps(t, id)
	defer deprovision(t, c, id, plan)
	t.Logf("backup_time %s UTC; waiting for it", at.Format("15:04"))

	dailies := func(from *broker) []mgmtapi.Backup {
		var list mgmtapi.BackupList
		if status := from.apiJSON(http.MethodGet, backupsPath(id), &list); status != 200 {
			t.Fatalf("list: %d", status)
		}
		var out []mgmtapi.Backup
		for _, bk := range list.Backups {
			if bk.Kind == "daily" {
				out = append(out, bk)
			}
		}
		return out
	}
	for time.Now().Before(at) {
		if got := dailies(b2); len(got) != 0 {
			t.Fatalf("a daily dump was recorded at %s, before its time %s: %+v", time.Now().UTC().Format(time.TimeOnly), at.Format(time.TimeOnly), got)
		}
		time.Sleep(500 * time.Millisecond)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(dailies(b2)) == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	got := dailies(b1)
	if len(got) != 1 {
		t.Fatalf("%d daily dumps after the scheduled time, want 1: %+v", len(got), got)
	}
	done := waitBackup(t, b2, id, got[0].ID, 3*time.Minute)
	if done.ScheduledAt == nil || !done.ScheduledAt.Equal(at) || done.CreatedAt.Before(at) || done.CreatedAt.After(at.Add(2*time.Minute)) {
		// A loaded machine delays ticks; what matters is that this run, and only it, fired.
		t.Errorf("daily dump scheduled at %v, created at %v; want scheduled at %v and created after it, within 2 min", done.ScheduledAt, done.CreatedAt, at)
	}
	time.Sleep(5 * time.Second) // several more ticks of both brokers
	if n := len(dailies(b1)); n != 1 {
		t.Errorf("%d daily dumps after more ticks, want 1", n)
	}
	t.Logf("daily dump %s: created %s after its time, %d bytes", done.ID, done.CreatedAt.Sub(at).Round(time.Millisecond), done.SizeBytes)
}

// TestBrokerKilledDuringDumpAndRestoreFinishesOnce: SIGKILL right after the
// dump job is registered, restart: the backup succeeds, once, with its file;
// SIGKILL right after the restore job is registered, restart: the restore
// operation succeeds and the rows are those at dump time. No job or secret
// is left.
func TestBrokerKilledDuringDumpAndRestoreFinishesOnce(t *testing.T) {
	b := newBroker(t, append([]string{"PGBROKER_CRASH_AT=dump:registered"}, crashEnv...)...)
	c := b.client()
	id := uuid.NewString()
	provision(t, c, id, crashPlan)
	removeDumps(t, id)
	defer deprovision(t, c, id, crashPlan)
	creds := bind(t, c, id, uuid.NewString(), crashPlan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 500) g")
	atDump := tableChecksum(t, app)

	var asked mgmtapi.Backup
	if status := b.apiJSON(http.MethodPost, backupsPath(id), &asked); status != http.StatusAccepted {
		t.Fatalf("POST backups: %d", status)
	}
	crashAndRestart(t, b, "dump:registered")
	done := waitBackup(t, b, id, asked.ID, 3*time.Minute)
	var list mgmtapi.BackupList
	b.apiJSON(http.MethodGet, backupsPath(id), &list)
	if len(list.Backups) != 1 {
		t.Fatalf("%d backups after the crash, want 1", len(list.Backups))
	}
	if st, err := os.Stat(filepath.Join(backupRoot, naming.DumpKey(naming.ShortID(id), done.ID))); err != nil || st.Size() != done.SizeBytes {
		t.Fatalf("dump file: %v, %v; want %d bytes", st, err, done.SizeBytes)
	}
	assertNoBatchJobsLeft(t, id)

	mustExec(t, app, "DELETE FROM items WHERE id % 2 = 0")
	app.Close(context.Background())
	b.stop()
	b.env = append(b.env, "PGBROKER_CRASH_AT=restore:registered")
	b.start()
	op := askRestore(t, b, id, done.ID)
	crashAndRestart(t, b, "restore:registered")
	waitOperation(t, c, id, &op, 3*time.Minute)
	app = connect(t, creds["DATABASE_URL"].(string))
	if got := tableChecksum(t, app); got != atDump {
		t.Fatalf("after the restore items checksum %s, want %s", got, atDump)
	}
	assertNoBatchJobsLeft(t, id)
}

// TestManualDumpsOverThePlanCapDeleteTheOldest: with a catalog whose Starter
// plans keep 2 manual dumps, a third manual dump deletes the oldest, from
// the backup storage and from the list.
func TestManualDumpsOverThePlanCapDeleteTheOldest(t *testing.T) {
	src, err := os.ReadFile("../catalog/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "manual_kept: 10") {
		t.Fatal("catalog.yaml no longer says manual_kept: 10 for Starter")
	}
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(string(src), "manual_kept: 10", "manual_kept: 2")), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, "PGBROKER_CATALOG_FILE="+file)
	c := b.client()
	id := uuid.NewString()
	const plan = "postgresql-starter-512"
	provision(t, c, id, plan)
	removeDumps(t, id)
	var made []mgmtapi.Backup
	for i := 0; i < 3; i++ {
		made = append(made, manualDump(t, b, id))
	}
	var list mgmtapi.BackupList
	b.apiJSON(http.MethodGet, backupsPath(id), &list)
	var kept []string
	for _, bk := range list.Backups {
		kept = append(kept, bk.ID)
	}
	if want := []string{made[2].ID, made[1].ID}; fmt.Sprint(kept) != fmt.Sprint(want) {
		t.Fatalf("kept %v, want the two newest %v", kept, want)
	}
	short := naming.ShortID(id)
	if _, err := os.Stat(filepath.Join(backupRoot, naming.DumpKey(short, made[0].ID))); !os.IsNotExist(err) {
		t.Errorf("the oldest dump's file is still there: %v", err)
	}
	if status, _ := b.raw(http.MethodGet, backupsPath(id)+"/"+made[0].ID, "", nil); status != http.StatusNotFound {
		t.Errorf("GET the deleted backup: %d, want 404", status)
	}

	// Deprovisioning does not delete backups early: they stay listed and downloadable.
	deprovision(t, c, id, plan)
	list = mgmtapi.BackupList{}
	b.apiJSON(http.MethodGet, backupsPath(id), &list)
	if len(list.Backups) != 2 || list.Schedule != nil {
		t.Errorf("after deprovisioning: %d backups, schedule %+v; want 2 and none", len(list.Backups), list.Schedule)
	}
	if status, _ := b.raw(http.MethodGet, backupsPath(id)+"/"+made[2].ID+"/download", "", nil); status != http.StatusOK {
		t.Errorf("download after deprovisioning: %d, want 200", status)
	}
	if status, body := b.raw(http.MethodPost, backupsPath(id), "", nil); status != http.StatusGone {
		t.Errorf("manual dump after deprovisioning: %d %s, want 410", status, body)
	}
}

// TestProvisionRestoreFromADumpOfAnotherInstance: a new instance provisioned
// with restore_from starts with the rows of the other instance's dump,
// owned by its own roles (read-write and read-only bindings work);
// restore_from naming another organization's instance is a 422 with the
// reason, an unknown instance or backup a 400 naming the field.
func TestProvisionRestoreFromADumpOfAnotherInstance(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	const plan = "postgresql-starter-512"
	source := uuid.NewString()
	provision(t, c, source, plan)
	removeDumps(t, source)
	defer deprovision(t, c, source, plan)
	app := connect(t, bind(t, c, source, uuid.NewString(), plan, nil)["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 1500) g")
	want := tableChecksum(t, app)
	dump := manualDump(t, b, source)

	body := func(org, inst, backup string) string {
		return fmt.Sprintf(`{"service_id":"postgresql","plan_id":%q,"organization_guid":%q,"space_guid":"space-acceptance","parameters":{"restore_from":{"instance_id":%q,"backup_id":%q}}}`,
			plan, org, inst, backup)
	}
	for _, bad := range []struct {
		body   string
		status int
		says   string
	}{
		{body("another-org", source, dump.ID), http.StatusUnprocessableEntity, "another organization or space"},
		{body("org-acceptance", source, uuid.NewString()), http.StatusBadRequest, "restore_from.backup_id"},
		{body("org-acceptance", uuid.NewString(), dump.ID), http.StatusBadRequest, "restore_from.instance_id"},
	} {
		status, answer := b.raw(http.MethodPut, "/v2/service_instances/"+uuid.NewString()+"?accepts_incomplete=true", bad.body, nil)
		if status != bad.status || !strings.Contains(answer, bad.says) {
			t.Errorf("provision with %s: %d %s, want %d saying %s", bad.body, status, answer, bad.status, bad.says)
		}
	}

	copyID := uuid.NewString()
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: copyID, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan,
		OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance",
		Parameters: map[string]any{"restore_from": map[string]any{"instance_id": source, "backup_id": dump.ID}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitOperation(t, c, copyID, resp.OperationKey, 3*time.Minute)
	defer deprovision(t, c, copyID, plan)
	rw := connect(t, bind(t, c, copyID, uuid.NewString(), plan, nil)["DATABASE_URL"].(string))
	if got := tableChecksum(t, rw); got != want {
		t.Fatalf("restored instance items checksum %s, want %s", got, want)
	}
	mustExec(t, rw, "INSERT INTO items VALUES (9999, 'written in the copy')")
	ro := connect(t, bind(t, c, copyID, uuid.NewString(), plan, map[string]any{"read_only": true})["DATABASE_URL"].(string))
	if n := count(t, ro, "items"); n != 1501 {
		t.Errorf("the read-only binding counts %d items, want 1501", n)
	}
	if got := tableChecksum(t, app); got != want {
		t.Errorf("the source changed: checksum %s, want %s", got, want)
	}
}

// dropScratch drops a scratch database of the state cluster. An autovacuum
// worker analysing the freshly restored tables holds it a moment, and the
// broker's role may not terminate it (WITH (FORCE) needs pg_signal_backend):
// try again for up to 30 s.
func dropScratch(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, stateURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("drop scratch database %s: %v", name, err)
		}
	}
}

// TestBackupWaitsForASlotHeldElsewhere: backups share PGBROKER_BACKUP_WORKERS
// slots across every broker on the state database. With one slot held by
// another process (as a second broker running a backup would hold it), a
// manual dump stays pending, then runs and succeeds once the slot is free.
func TestBackupWaitsForASlotHeldElsewhere(t *testing.T) {
	b := newBroker(t, "PGBROKER_BACKUP_WORKERS=1")
	c := b.client()
	id := uuid.NewString()
	const plan = "postgresql-starter-512"
	provision(t, c, id, plan)
	defer deprovision(t, c, id, plan)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, b.stateDB)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1, 0)", store.BackupSlotClass); err != nil {
		t.Fatal(err)
	}
	var asked mgmtapi.Backup
	if status := b.apiJSON(http.MethodPost, backupsPath(id), &asked); status != http.StatusAccepted {
		t.Fatalf("POST backups: %d, want 202", status)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var got mgmtapi.Backup
		if status := b.apiJSON(http.MethodGet, backupsPath(id)+"/"+asked.ID, &got); status != http.StatusOK {
			t.Fatalf("GET backup: %d", status)
		}
		if got.Status != "pending" || got.StartedAt != nil {
			t.Fatalf("with the only slot held elsewhere the dump is %s (started %v), want pending", got.Status, got.StartedAt)
		}
	}
	released := time.Now()
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock($1, 0)", store.BackupSlotClass); err != nil {
		t.Fatal(err)
	}
	done := waitBackup(t, b, id, asked.ID, 2*time.Minute)
	if done.StartedAt == nil || done.StartedAt.Before(released) {
		t.Errorf("dump started at %v, before the slot was released at %s", done.StartedAt, released)
	}
}
