package acceptance

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/provisioner"
)

// TestBusinessPointInTimeRestoreInPlace (issue #4 item 6, on a Business
// instance): rows committed at T1, T2 and T3; a point-in-time restore to
// between T2 and T3 gives back the T1 and T2 rows and not T3's, through the
// same credentials, and ends as a cluster again: two nodes with a
// synchronous standby, two gateways, and read_only_uri reading the restored
// rows from a standby cloned afresh. The broker is SIGKILLed once Patroni
// adopted the restored node (tiers:adopted: the node job no longer names
// the restore); a row written while it is down survives the attempt after
// the restart, so the restore did not run twice. Then a Business copy
// (provision parameter restore_from.point_in_time) of a moment after that
// restore, the broker SIGKILLed at the same step, holds the rows of that
// moment, was registered for its restore once, and is a healthy cluster.
func TestBusinessPointInTimeRestoreInPlace(t *testing.T) {
	t.Parallel()
	b := newBroker(t, "PGBROKER_BACKUP_SCHEDULE_TICK=1s", "PGBROKER_ATTEMPT_TIMEOUT=90s", "PGBROKER_RESCUE_AFTER=95s",
		"PGBROKER_CRASH_AT=tiers:adopted")
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	provisionWithin(t, c, id, businessPlan, 5*time.Minute)
	waitFirstBaseBackup(t, b, id)

	creds := bind(t, c, id, uuid.NewString(), businessPlan, nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, "CREATE TABLE items (id int PRIMARY KEY, at text NOT NULL)")
	mustExec(t, app, "INSERT INTO items SELECT g, 'T1' FROM generate_series(1, 100) g")
	mustExec(t, app, "INSERT INTO items SELECT g, 'T2' FROM generate_series(101, 200) g")
	var target time.Time
	if err := app.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	mustExec(t, app, "INSERT INTO items SELECT g, 'T3' FROM generate_series(201, 300) g")
	mustExec(t, app, "UPDATE items SET at = 'T3' WHERE id <= 10")
	app.Close(context.Background())
	_, timelineBefore := leaderTimeline(t, short)

	status, body := b.raw(http.MethodPost, backupsPath(id)+"/pitr-restore",
		`{"target_time":"`+target.UTC().Format(time.RFC3339Nano)+`"}`, nil)
	if status != http.StatusAccepted {
		t.Fatalf("pitr-restore of a Business instance: %d %s", status, body)
	}
	var restore mgmtapi.PITRRestore
	if err := jsonUnmarshal(body, &restore); err != nil {
		t.Fatal(err)
	}
	if !b.crashed(5 * time.Minute) {
		t.Fatal("the broker did not crash at tiers:adopted")
	}
	// Restored, under Patroni, not yet a cluster: the gateway reaches node-0.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		err := writeOnce(creds["DATABASE_URL"].(string), "INSERT INTO items VALUES (1000, 'after the restore')")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write through the gateway after the restore: %v", err)
		}
	}
	b.restartWithout("PGBROKER_CRASH_AT")
	op := osb.OperationKey(restore.Operation)
	waitOperation(t, c, id, &op, 8*time.Minute)

	want := map[string]int{"T1": 100, "T2": 100, "after the restore": 1}
	app = connect(t, creds["DATABASE_URL"].(string))
	assertRowsByTime(t, app, "through DATABASE_URL", want)
	mustExec(t, app, "INSERT INTO items VALUES (1001, 'writable')")
	app.Close(context.Background())
	waitClusterHealthy(t, short, 2*time.Minute)
	if n, g := len(runningAllocs(t, provisioner.NodesJobID(short))), len(runningAllocs(t, provisioner.GatewaysJobID(short))); n != 2 || g != 2 {
		t.Fatalf("after the restore: %d nodes and %d gateways running, want 2 of each", n, g)
	}
	if _, timeline := leaderTimeline(t, short); timeline <= timelineBefore {
		t.Errorf("leader timeline %d after the restore, want above %d (the restore promotes)", timeline, timelineBefore)
	}
	want["writable"] = 1
	standby := connect(t, creds["read_only_uri"].(string))
	defer standby.Close(context.Background())
	for deadline := time.Now().Add(time.Minute); count(t, standby, "items") != 202; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the standby has %d rows a minute after the restore, want 202", count(t, standby, "items"))
		}
	}
	assertRowsByTime(t, standby, "through read_only_uri", want)

	// A Business copy of a point in time after that restore (its WAL is on
	// the restore's timeline), crashed at the same step.
	app = connect(t, creds["DATABASE_URL"].(string))
	var copyTarget time.Time
	if err := app.QueryRow(context.Background(), "SELECT clock_timestamp()").Scan(&copyTarget); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	mustExec(t, app, "INSERT INTO items VALUES (1002, 'after the copy target')")
	app.Close(context.Background())
	b.restartWith("PGBROKER_CRASH_AT", "tiers:adopted")
	copyID := uuid.NewString()
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: copyID, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: businessPlan,
		OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance",
		Parameters: map[string]any{"restore_from": map[string]any{"instance_id": id,
			"point_in_time": copyTarget.UTC().Format(time.RFC3339Nano)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !b.crashed(5 * time.Minute) {
		diagnose(t, copyID)
		diagnose(t, id)
		t.Fatal("the broker did not crash at tiers:adopted while making the copy")
	}
	b.restartWithout("PGBROKER_CRASH_AT")
	waitOperation(t, c, copyID, resp.OperationKey, 8*time.Minute)
	if n := nodeJobVersions(t, copyID); n != 1 {
		t.Errorf("the copy's node job was registered for its restore %d times, want once", n)
	}
	waitClusterHealthy(t, naming.ShortID(copyID), 2*time.Minute)
	copyCreds := bind(t, c, copyID, uuid.NewString(), businessPlan, nil)
	cp := connect(t, copyCreds["DATABASE_URL"].(string))
	assertRowsByTime(t, cp, "the copy through DATABASE_URL", want)
	mustExec(t, cp, "INSERT INTO items VALUES (1003, 'written in the copy')")
	cp.Close(context.Background())
	deprovision(t, c, copyID, businessPlan)
	assertGone(t, copyID)
	deprovision(t, c, id, businessPlan)
	assertGone(t, id)
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
	if len(got) != len(want) {
		t.Fatalf("%s: rows by time %v, want %v", through, got, want)
	}
	for at, n := range want {
		if got[at] != n {
			t.Fatalf("%s: rows by time %v, want %v", through, got, want)
		}
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
