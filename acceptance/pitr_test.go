package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/backupapi"
	"github.com/pgbroker/pgbroker/provisioner"
)

// pitrCase is one point-in-time recovery scenario: a plan on a repository,
// and what else is asked of that instance beside its restore in place.
type pitrCase struct {
	tier, storage string // test names: "Starter" or "Business"; "Filesystem" or "S3"
	plan          string
	env           []string // more broker settings, from its start
	restoreCrash  string   // crash point hit during the restore in place ("" none)
	copy          copyWhen
	copyCrash     string // crash point hit while the copy is provisioned ("" none)
	rotate        bool   // rotate the S3 keys and restore past the rotation
}

// copyWhen says whether a copy of the instance (provision parameter
// restore_from.point_in_time) is made, and of which moment: the restore
// target, before the restore in place, or a moment after that restore (its
// WAL on the restore's timeline).
type copyWhen int

const (
	noCopy copyWhen = iota
	copyBeforeRestore
	copyAfterRestore
)

const starterPlan = "postgresql-starter-512"

// pitrCases: Business cases crash at tiers:adopted (Patroni adopted the
// restored node), Starter ones at pitr:registered (the restoring node job
// registered).
var pitrCases = []pitrCase{
	{tier: "Starter", storage: "Filesystem", plan: starterPlan, copy: copyBeforeRestore, copyCrash: "pitr:registered"},
	{tier: "Starter", storage: "S3", plan: starterPlan, copy: copyBeforeRestore, rotate: true},
	{tier: "Business", storage: "Filesystem", plan: businessPlan, env: []string{"PGBROKER_ATTEMPT_TIMEOUT=90s", "PGBROKER_RESCUE_AFTER=95s"},
		restoreCrash: "tiers:adopted", copy: copyAfterRestore, copyCrash: "tiers:adopted"},
	{tier: "Business", storage: "S3", plan: businessPlan},
}

// TestStarterPointInTimeRestore runs pointInTimeRecovery on a Starter
// instance with each repository, one after the other.
func TestStarterPointInTimeRestore(t *testing.T) { runPITRCases(t, "Starter") }

// TestBusinessPointInTimeRestore runs pointInTimeRecovery on a Business
// instance with each repository. Both run at once, beside the suite's other
// parallel tests (the crash tests), as before they were table-driven.
func TestBusinessPointInTimeRestore(t *testing.T) {
	t.Parallel()
	runPITRCases(t, "Business")
}

func runPITRCases(t *testing.T, tier string) {
	for _, tc := range pitrCases {
		if tc.tier != tier {
			continue
		}
		t.Run(tc.storage, func(t *testing.T) {
			if tc.plan == businessPlan {
				t.Parallel()
			}
			pointInTimeRecovery(t, tc)
		})
	}
}

// pointInTimeRecovery: the first weekly base backup of an instance lands in
// the repository (firstBaseBackup); rows are written at T1 and T2, a target
// noted, rows added, changed and deleted at T3. Bad targets are refused
// naming target_time; a copy (restore_from) of a moment holds the rows of
// that moment (provisionCopy); a point-in-time restore in place to the target
// gives back exactly the rows at the target through the same credentials,
// writable, and on Business a cluster again (assertClusterAgain). Rotated S3
// keys reach the node without a new job version (rotateS3Keys). No secret
// reaches a job spec or the log; deprovisioning deletes the stanza.
func pointInTimeRecovery(t *testing.T, tc pitrCase) {
	repo := openPITRRepo(t, tc.storage)
	b := newBroker(t, append(append(repo.env(), "PGBROKER_BACKUP_SCHEDULE_TICK=1s"), tc.env...)...)
	in := firstBaseBackup(t, b, repo, tc.plan)
	at := writeAroundATarget(t, in)
	refuseBadTargets(t, in)
	if tc.copy == copyBeforeRestore {
		provisionCopy(t, in, repo, at, tc.copyCrash)
	}
	timeline := 0
	if tc.plan == businessPlan {
		_, timeline = leaderTimeline(t, in.short)
	}
	restoreInPlace(t, in, at, tc.restoreCrash)
	if tc.plan == businessPlan {
		assertClusterAgain(t, in, repo, at, timeline)
	}
	if tc.copy == copyAfterRestore {
		provisionCopy(t, in, repo, in.momentAfter(t, at, "before the copy target"), tc.copyCrash)
	}
	if tc.rotate {
		rotateS3Keys(t, in, repo, at)
	}
	repo.assertKeysFromVariable(t, in.short)
	assertNoSecretLeak(t, b, in.id, repo.secrets()...)
	deprovision(t, in.c, in.id, in.plan)
	assertGone(t, in.id)
	repo.assertNoStanza(t, in.short)
	for _, secret := range repo.secrets() {
		if strings.Contains(b.logs.String(), secret) {
			t.Error("the S3 secret key appears in the broker log")
		}
	}
}

// pitrInstance is an instance with its first base backup and one binding.
type pitrInstance struct {
	b               *broker
	c               osb.Client
	id, short, plan string
	creds           map[string]any
	earliest        time.Time // earliest_target_time after the first base backup
}

func (in *pitrInstance) url() string { return in.creds["DATABASE_URL"].(string) }

// rowsAt is what table items holds at a moment: rows by value of column at,
// and a checksum of every row (id < 1000, the rows written before the
// target and after).
type rowsAt struct {
	moment   time.Time
	byTime   map[string]int
	checksum string
	now      map[string]int // the source's rows once written past the moment
}

// writeAroundATarget fills items (id, at): 100 rows at T1, 100 at T2, notes
// the target, then at T3 adds 100 rows, moves 10 T1 rows to T3 and deletes
// 10 T2 rows.
func writeAroundATarget(t *testing.T, in *pitrInstance) rowsAt {
	t.Helper()
	app := connect(t, in.url())
	defer app.Close(context.Background())
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, at text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'T1' FROM generate_series(1, 100) g")
	mustExec(t, app, "INSERT INTO items SELECT g, 'T2' FROM generate_series(101, 200) g")
	at := rowsAt{byTime: map[string]int{"T1": 100, "T2": 100}, checksum: itemsChecksum(t, app), moment: clockNow(t, app)}
	time.Sleep(time.Second)
	mustExec(t, app, "INSERT INTO items SELECT g, 'T3' FROM generate_series(201, 300) g")
	mustExec(t, app, "UPDATE items SET at = 'T3' WHERE id <= 10")
	mustExec(t, app, "DELETE FROM items WHERE id > 190 AND id <= 200")
	at.now = map[string]int{"T1": 90, "T2": 90, "T3": 110}
	if itemsChecksum(t, app) == at.checksum {
		t.Fatal("the changes at T3 did not change the checksum")
	}
	assertRowsByTime(t, app, "the source", at.now)
	t.Logf("target %s", at.moment.Format(time.RFC3339Nano))
	return at
}

// momentAfter writes a row labelled before on the source, notes a moment,
// and writes one labelled "past the moment"; it returns the rows at that
// moment: at's and the first row.
func (in *pitrInstance) momentAfter(t *testing.T, at rowsAt, before string) rowsAt {
	t.Helper()
	app := connect(t, in.url())
	defer app.Close(context.Background())
	after := rowsAt{byTime: map[string]int{before: 1}, now: map[string]int{before: 1, "past the moment": 1}}
	for k, v := range at.byTime {
		after.byTime[k] += v
		after.now[k] += v
	}
	writeRow(t, app, before)
	after.checksum, after.moment = itemsChecksum(t, app), clockNow(t, app)
	time.Sleep(time.Second)
	writeRow(t, app, "past the moment")
	return after
}

// writeRow adds a row to items after the others (id 1000 and above: out of
// itemsChecksum) at label.
func writeRow(t *testing.T, conn *pgx.Conn, label string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), "INSERT INTO items SELECT greatest(max(id) + 1, 1001), $1 FROM items", label); err != nil {
		t.Fatalf("write a row at %s: %v", label, err)
	}
}

// firstBaseBackup provisions an instance of plan, binds it, and waits for
// its first weekly base backup: a batch job, purged with its Variable
// afterwards, whose backup lands in the repository (on Business taken from
// the standby); the node job's spec holds no private key.
func firstBaseBackup(t *testing.T, b *broker, repo pitrRepo, plan string) *pitrInstance {
	t.Helper()
	in := &pitrInstance{b: b, c: b.client(), id: uuid.NewString(), plan: plan}
	in.short = provisioner.ShortID(in.id)
	clients := watchBatchClients(t, in.short, "basebackup")
	provisionWithin(t, in.c, in.id, plan, 5*time.Minute)
	list := waitFirstBaseBackup(t, b, in.id)
	in.earliest = *list.PITR.EarliestTargetTime
	t.Logf("first base backup: PITR from %s", in.earliest.Format(time.RFC3339Nano))
	ran := clients()
	assertNoBatchJobsLeft(t, in.id, "basebackup")
	manifest := repo.assertStanza(t, in.short)
	in.creds = bind(t, in.c, in.id, uuid.NewString(), plan, nil)
	if plan == businessPlan {
		assertBackedUpFromTheStandby(t, in, ran, manifest)
	}
	job, _, err := nomadClient(t).Jobs().Info(provisioner.NodesJobID(in.short), nil)
	if err != nil {
		t.Fatal(err)
	}
	if spec, _ := json.Marshal(job); strings.Contains(string(spec), "PRIVATE KEY") {
		t.Error("the node job's spec holds a private key")
	}
	return in
}

// waitFirstBaseBackup waits (3 minutes at most) until the backups API of
// instance id offers point-in-time restores (earliest_target_time: its
// first base backup succeeded) and returns that answer.
func waitFirstBaseBackup(t *testing.T, b *broker, id string) backupapi.List {
	t.Helper()
	var list backupapi.List
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

// refuseBadTargets: a point-in-time restore to a malformed target, one in
// the future or before the first base backup, or without target_time, is a
// 4xx saying so.
func refuseBadTargets(t *testing.T, in *pitrInstance) {
	t.Helper()
	for _, bad := range []struct{ body, says string }{
		{`{"target_time":"yesterday"}`, "target_time"},
		{`{"target_time":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`, "in the future"},
		{`{"target_time":"` + in.earliest.Add(-time.Minute).Format(time.RFC3339) + `"}`, "before the earliest"},
		{`{"when":"now"}`, "target_time"},
	} {
		status, body := in.b.raw(http.MethodPost, backupsPath(in.id)+"/pitr-restore", bad.body, nil)
		if status/100 != 4 || !strings.Contains(body, bad.says) {
			t.Errorf("pitr-restore %s: %d %s, want a 4xx saying %q", bad.body, status, body, bad.says)
		}
	}
}

// startPITRRestore asks for a point-in-time restore of the instance to
// target and returns its operation.
func (in *pitrInstance) startPITRRestore(t *testing.T, target time.Time) *osb.OperationKey {
	t.Helper()
	status, body := in.b.raw(http.MethodPost, backupsPath(in.id)+"/pitr-restore",
		`{"target_time":"`+target.UTC().Format(time.RFC3339Nano)+`"}`, nil)
	if status != http.StatusAccepted {
		t.Fatalf("pitr-restore to %s: %d %s", target.Format(time.RFC3339Nano), status, body)
	}
	var restore backupapi.PITRRestore
	if err := json.Unmarshal([]byte(body), &restore); err != nil {
		t.Fatal(err)
	}
	op := osb.OperationKey(restore.Operation)
	return &op
}

// restoreInPlace restores the instance to at and checks its rows through
// the same credentials, then writes one. With a crash point the broker is
// SIGKILLed there; a row written while it is down survives the attempt after
// the restart (the restore did not run twice) and joins at.byTime.
func restoreInPlace(t *testing.T, in *pitrInstance, at rowsAt, crash string) {
	t.Helper()
	if crash != "" {
		in.b.restartWith("PGBROKER_CRASH_AT", crash)
	}
	op := in.startPITRRestore(t, at.moment)
	if crash != "" {
		if !in.b.crashed(5 * time.Minute) {
			t.Fatalf("the broker did not crash at %s", crash)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
			err := writeOnce(in.url(), "INSERT INTO items VALUES (1000, 'after the restore')")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no write through the gateway after the restore: %v", err)
			}
		}
		at.byTime["after the restore"] = 1
		in.b.restartWithout("PGBROKER_CRASH_AT")
	}
	waitOperation(t, in.c, in.id, op, 8*time.Minute)
	app := connect(t, in.url())
	defer app.Close(context.Background())
	if got := itemsChecksum(t, app); got != at.checksum {
		t.Errorf("after the point-in-time restore items checksum %s, want %s (at %s)", got, at.checksum, at.moment)
	}
	assertRowsByTime(t, app, "through DATABASE_URL", at.byTime)
	writeRow(t, app, "writable")
	at.byTime["writable"]++
}

// itemsChecksum is an md5 over the rows of items with id < 1000, in id order.
func itemsChecksum(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var sum string
	err := conn.QueryRow(context.Background(),
		`SELECT md5(coalesce(string_agg(id || ':' || at, ',' ORDER BY id), '')) || ':' || count(*) FROM items WHERE id < 1000`).Scan(&sum)
	if err != nil {
		t.Fatalf("checksum items: %v", err)
	}
	return sum
}

// clockNow is the server's clock_timestamp().
func clockNow(t *testing.T, conn *pgx.Conn) time.Time {
	t.Helper()
	var at time.Time
	if err := conn.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// assertRowsByTime checks items holds exactly want rows per value of at.
func assertRowsByTime(t *testing.T, conn *pgx.Conn, through string, want map[string]int) {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT at, count(*) FROM items GROUP BY at")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var at string
		var n int
		if err := rows.Scan(&at, &n); err != nil {
			t.Fatal(err)
		}
		got[at] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: rows by time %v, want %v", through, got, want)
	}
}

// writeOnce runs one statement on a new connection to databaseURL.
func writeOnce(databaseURL, sql string) error {
	conn, err := tryConnect(databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), sql)
	return err
}
