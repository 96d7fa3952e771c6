package acceptance

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/mgmtapi"
	"github.com/pgbroker/pgbroker/naming"
)

// offered18 is the stack's PGBROKER_POSTGRES_VERSIONS when it offers 15.20
// and 18.6 (scripts/build-postgres.sh, scripts/build-postgres18.sh); without
// them the major upgrade tests fail in CI and are skipped elsewhere.
func offered18(t testing.TB) string {
	t.Helper()
	v := os.Getenv("PGBROKER_POSTGRES_VERSIONS")
	if !strings.Contains(v, "15.20=") || !strings.Contains(v, "18.6=") {
		msg := "PGBROKER_POSTGRES_VERSIONS offers no 15.20 and 18.6 (" + v + "): run `make deps` (scripts/build-postgres.sh, scripts/build-postgres18.sh) and the stack's env"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}

// requestMajorUpgrade sends an OSB update with parameters params (JSON) and
// plan plan ("": the instance's), and returns the status and body.
func requestMajorUpgrade(b *broker, id, plan, params string) (int, string) {
	body := `{"service_id":"` + serviceID + `","parameters":` + params
	if plan != "" {
		body += `,"plan_id":"` + plan + `"`
	}
	return b.raw(http.MethodPatch, "/v2/service_instances/"+id+"?accepts_incomplete=true", body+"}", nil)
}

// waitOperationOutcome polls last_operation until it succeeded or failed
// and returns that state and the description.
func waitOperationOutcome(t testing.TB, c osb.Client, instanceID string, op *osb.OperationKey, limit time.Duration) (osb.LastOperationState, string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := c.PollLastOperation(&osb.LastOperationRequest{InstanceID: instanceID, OperationKey: op})
		if err != nil {
			t.Fatalf("last_operation: %v", err)
		}
		desc := ""
		if resp.Description != nil {
			desc = *resp.Description
		}
		if desc != last {
			t.Logf("last_operation %s: %s", resp.State, desc)
			last = desc
		}
		if resp.State == osb.StateSucceeded || resp.State == osb.StateFailed {
			return resp.State, desc
		}
		time.Sleep(100 * time.Millisecond)
	}
	diagnose(t, instanceID)
	t.Fatalf("operation did not finish within %s; last: %s", limit, last)
	return "", ""
}

// acceptedOperation reads the operation of a 202 answer to an update.
func acceptedOperation(t testing.TB, status int, body string) *osb.OperationKey {
	t.Helper()
	var accepted struct {
		Operation string `json:"operation"`
	}
	if err := json.Unmarshal([]byte(body), &accepted); err != nil || status != http.StatusAccepted || accepted.Operation == "" {
		t.Fatalf("update: %d %s, want 202 with an operation", status, body)
	}
	op := osb.OperationKey(accepted.Operation)
	return &op
}

// upgradeState is what the test checks before and after: the data, the
// sequence, the view, and both extensions at work.
func upgradeState(t *testing.T, databaseURL string) string {
	t.Helper()
	conn := connect(t, databaseURL)
	var rows, viewed int
	var digest, sum string
	if err := conn.QueryRow(t.Context(), `SELECT count(*), encode(digest(string_agg(body, ',' ORDER BY id), 'sha256'), 'hex') FROM items`).Scan(&rows, &digest); err != nil {
		t.Fatalf("read items (pgcrypto's digest): %v", err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT n FROM item_count`).Scan(&viewed); err != nil || viewed != rows {
		t.Fatalf("view item_count: %d (%v), want %d", viewed, err, rows)
	}
	if err := conn.QueryRow(t.Context(), `SELECT pgp_sym_decrypt(secret, 'k') FROM items WHERE id = 1`).Scan(&sum); err != nil || sum != "body 1" {
		t.Fatalf("pgcrypto's pgp_sym_decrypt: %q (%v), want body 1", sum, err)
	}
	var statements int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_statements`).Scan(&statements); err != nil || statements == 0 {
		t.Fatalf("pg_stat_statements: %d rows (%v), want some", statements, err)
	}
	return digest
}

// TestAStarterUpgradesToPostgreSQL18KeepingEverything: a Starter instance
// on 15.20 with data, a sequence, a view, pg_stat_statements and pgcrypto,
// two bindings and a user. Refused first, each a 422 naming
// postgresql_version and changing nothing: a downgrade, a major not
// offered, a major upgrade with a plan change. A table of a reg* type
// (regproc, refused by pg_upgrade) makes pg_upgrade --check fail the
// operation with its reason while the instance runs on, unchanged. Without
// it the upgrade to 18 succeeds: server_version 18.6 through both
// bindings' DATABASE_URLs, the user logs in, every object is there, the
// sequence goes on, the extensions are at 18's versions (ALTER EXTENSION
// ... UPDATE ran), GET instance says 18.6, and 15 is now a downgrade.
func TestAStarterUpgradesToPostgreSQL18KeepingEverything(t *testing.T) {
	offered18(t)
	const plan = "postgresql-starter-512"
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	short := naming.ShortID(id)
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan,
		OrganizationGUID: "org", SpaceGUID: "space", Parameters: map[string]any{"extensions": []string{"pg_stat_statements", "pgcrypto"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deprovision(t, c, id, plan) })
	waitOperation(t, c, id, resp.OperationKey, 3*time.Minute)
	first := bind(t, c, id, uuid.NewString(), plan, nil)["DATABASE_URL"].(string)
	second := bind(t, c, id, uuid.NewString(), plan, nil)["DATABASE_URL"].(string)
	if v := serverVersion(t, first); !strings.HasPrefix(v, "15.20 ") {
		t.Fatalf("before: server_version %q, want 15.20 (the newest 15 offered)", v)
	}
	app := connect(t, first)
	mustExec(t, app, `CREATE TABLE items (id bigserial PRIMARY KEY, body text NOT NULL, secret bytea)`)
	mustExec(t, app, `INSERT INTO items (body, secret) SELECT 'body ' || g, pgp_sym_encrypt('body ' || g, 'k') FROM generate_series(1, 1000) g`)
	mustExec(t, app, `CREATE SEQUENCE tickets START 100`)
	mustExec(t, app, `SELECT nextval('tickets'), nextval('tickets'), nextval('tickets')`) // 100, 101, 102
	mustExec(t, app, `CREATE VIEW item_count AS SELECT count(*)::int AS n FROM items`)
	const userName, userPassword = "upgrader", "upgrade-pass-1"
	if status, body := b.apiCall(t, "POST", "/api/instances/"+id+"/users", `{"username":"`+userName+`","password":"`+userPassword+`"}`, nil); status != http.StatusCreated {
		t.Fatalf("create user: %d %s", status, body)
	}
	suite.addSecret(userPassword)
	digest := upgradeState(t, first)
	removeDumps(t, id)
	dump := manualDump(t, b, id) // on 15.20: restored into 18.6 below
	if list := backupList(t, b, id); list.PITR == nil || list.PITROff != "" {
		t.Fatalf("GET backups on 15.20: pitr %+v, pitr_off %q; want the point-in-time window and no reason it is off", list.PITR, list.PITROff)
	}

	// Refusals: 422 naming the parameter, nothing registered again.
	jobVersion := nodeJobVersion(t, short)
	for _, r := range []struct{ plan, params, says string }{
		{"", `{"postgresql_version":"14"}`, "only go forward"},
		{"", `{"postgresql_version":"17"}`, "PostgreSQL 17 is not offered"},
		{"postgresql-starter-1024", `{"postgresql_version":"18"}`, "cannot come with a plan change"},
	} {
		status, body := requestMajorUpgrade(b, id, r.plan, r.params)
		if status != http.StatusUnprocessableEntity || !strings.Contains(body, "MajorUpgradeNotPossible") ||
			!strings.Contains(body, "postgresql_version") || !strings.Contains(body, r.says) {
			t.Fatalf("update %s (plan %q): %d %s, want 422 MajorUpgradeNotPossible saying %q", r.params, r.plan, status, body, r.says)
		}
	}
	if v := nodeJobVersion(t, short); v != jobVersion {
		t.Fatalf("a refused major upgrade re-registered the node job (version %d, was %d)", v, jobVersion)
	}

	// A column of a reg* type: pg_upgrade --check refuses the cluster.
	mustExec(t, app, `CREATE TABLE planted (f regproc)`)
	mustExec(t, app, `INSERT INTO planted VALUES ('now'::regproc)`)
	status, body := requestMajorUpgrade(b, id, "", `{"postgresql_version":"18"}`)
	state, desc := waitOperationOutcome(t, c, id, acceptedOperation(t, status, body), 5*time.Minute)
	if state != osb.StateFailed || !strings.Contains(desc, "pg_upgrade --check") || !strings.Contains(desc, "reg*") {
		t.Fatalf("upgrade with a regproc column: %s %q, want failed with pg_upgrade --check's reason (reg* data types)", state, desc)
	}
	if v := nodeJobVersion(t, short); v != jobVersion {
		t.Fatalf("a refused check re-registered the node job (version %d, was %d)", v, jobVersion)
	}
	if v := serverVersion(t, first); !strings.HasPrefix(v, "15.20 ") {
		t.Fatalf("after the refused check: server_version %q, want 15.20", v)
	}
	if got := upgradeState(t, first); got != digest {
		t.Fatalf("after the refused check the data changed: digest %s, was %s", got, digest)
	}
	if a := instanceAttributes(t, b, id); a["postgres_version"] != "15.20" {
		t.Fatalf("GET instance after the refused check: %v, want postgres_version 15.20", a)
	}
	mustExec(t, app, `DROP TABLE planted`)
	app.Close(t.Context())

	started := time.Now()
	status, body = requestMajorUpgrade(b, id, "", `{"postgresql_version":"18"}`)
	state, desc = waitOperationOutcome(t, c, id, acceptedOperation(t, status, body), 10*time.Minute)
	if state != osb.StateSucceeded {
		diagnose(t, id)
		t.Fatalf("upgrade to 18: %s %q", state, desc)
	}
	t.Logf("major upgrade 15.20 -> 18.6 of a Starter with 1000 rows: operation %.1f s: %s", time.Since(started).Seconds(), desc)
	if !strings.Contains(desc, "now on PostgreSQL 18.6") || !strings.Contains(desc, "point-in-time recovery") {
		t.Fatalf("success description %q, want it to name 18.6 and say what becomes of point-in-time recovery", desc)
	}

	for _, u := range []string{first, second, userURL(t, first, userName, userPassword)} {
		if v := serverVersion(t, u); !strings.HasPrefix(v, "18.6") {
			t.Fatalf("after: server_version %q, want 18.6", v)
		}
	}
	if got := upgradeState(t, second); got != digest {
		t.Fatalf("after the upgrade the data differs: digest %s, was %s", got, digest)
	}
	app = connect(t, second)
	var next int64
	if err := app.QueryRow(t.Context(), `SELECT nextval('tickets')`).Scan(&next); err != nil || next != 103 {
		t.Fatalf("sequence after the upgrade: %d (%v), want 103", next, err)
	}
	rows, err := app.Query(t.Context(), `SELECT e.extname, e.extversion, a.default_version FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var name, have, want string
		if err := rows.Scan(&name, &have, &want); err != nil {
			t.Fatal(err)
		}
		if have != want {
			t.Errorf("extension %s is at %s after the upgrade, want 18's %s (ALTER EXTENSION ... UPDATE)", name, have, want)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "pg_stat_statements,pgcrypto,plpgsql" {
		t.Fatalf("extensions after the upgrade: %s, want pg_stat_statements, pgcrypto, plpgsql", got)
	}
	if a := instanceAttributes(t, b, id); a["postgres_version"] != "18.6" {
		t.Fatalf("GET instance after the upgrade: %v, want postgres_version 18.6", a)
	}
	if status, body := requestMajorUpgrade(b, id, "", `{"postgresql_version":"15"}`); status != http.StatusUnprocessableEntity || !strings.Contains(body, "only go forward") {
		t.Fatalf("back to 15: %d %s, want 422", status, body)
	}

	// GET backups says what became of point-in-time recovery (issue 15).
	if list := backupList(t, b, id); list.PITR != nil || !strings.Contains(list.PITROff, "point-in-time recovery is off on PostgreSQL 18.6") {
		t.Fatalf("GET backups on 18.6: pitr %+v, pitr_off %q; want no window and the reason", list.PITR, list.PITROff)
	}

	// The dump taken on 15.20 restores into the instance on 18.6 (issue 15:
	// dumps taken before the upgrade stay restorable into the new major).
	mustExec(t, app, `DELETE FROM items WHERE id > 500`)
	app.Close(t.Context())
	if got := upgradeState(t, second); got == digest {
		t.Fatal("deleting rows did not change the digest")
	}
	op := askRestore(t, b, id, dump.ID)
	if state, desc := waitOperationOutcome(t, c, id, &op, 3*time.Minute); state != osb.StateSucceeded {
		t.Fatalf("restore of the dump taken on 15.20 into 18.6: %s %q", state, desc)
	}
	if got := upgradeState(t, second); got != digest {
		t.Fatalf("after restoring the 15.20 dump: digest %s, want %s (dump time)", got, digest)
	}
	if v := serverVersion(t, first); !strings.HasPrefix(v, "18.6") {
		t.Fatalf("after the restore: server_version %q, want 18.6", v)
	}
	app = connect(t, second)
	if err := app.QueryRow(t.Context(), `SELECT nextval('tickets')`).Scan(&next); err != nil || next != 103 {
		t.Fatalf("sequence after restoring the dump: %d (%v), want 103 (it stood at 102 at dump time)", next, err)
	}
}

// TestBrokerKilledDuringAMajorUpgradeFinishesIt: SIGKILL at each step of
// the upgrade: right after the check passed, after the node stopped, after
// pg_upgrade, and after the node started on 18.6. The restarted broker
// finishes the upgrade (the stopped node is not taken for one that failed
// its check, pg_upgrade is not run on the upgraded cluster, a node on the
// new binaries is not stopped again), the rows are there
// through the same DATABASE_URL on 18.6, one node allocation runs, and the
// old data directory is gone.
func TestBrokerKilledDuringAMajorUpgradeFinishesIt(t *testing.T) {
	offered18(t)
	for _, point := range []string{"upgrade:checked", "upgrade:stopped", "upgrade:upgraded", "upgrade:started"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t, append(crashEnv, "PGBROKER_CRASH_AT="+point)...)
			c := b.client()
			id := uuid.NewString()
			waitOperation(t, c, id, startProvision(t, c, id), 3*time.Minute)
			t.Cleanup(func() { deprovision(t, c, id, crashPlan) })
			databaseURL := bind(t, c, id, uuid.NewString(), crashPlan, nil)["DATABASE_URL"].(string)
			conn := connect(t, databaseURL)
			mustExec(t, conn, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2), (3)")
			conn.Close(t.Context())
			status, body := requestMajorUpgrade(b, id, "", `{"postgresql_version":"18"}`)
			op := acceptedOperation(t, status, body)
			crashAndRestart(t, b, point)
			waitOperation(t, c, id, op, 10*time.Minute)
			if v := serverVersion(t, databaseURL); !strings.HasPrefix(v, "18.6") {
				t.Fatalf("after: server_version %q, want 18.6", v)
			}
			again := connect(t, databaseURL)
			if n := count(t, again, "kept"); n != 3 {
				t.Fatalf("%d rows after the upgrade, want 3", n)
			}
			again.Close(t.Context())
			if n := runningNodeAllocs(t, id); n != 1 {
				t.Fatalf("%d running node allocations, want 1", n)
			}
			if old := dataDir(id) + "/node-0.old"; exists(old) {
				t.Fatalf("the old data directory %s is left", old)
			}
		})
	}
}

// backupList is GET /api/instances/{id}/backups.
func backupList(t *testing.T, b *broker, id string) mgmtapi.BackupList {
	t.Helper()
	var list mgmtapi.BackupList
	if status := b.apiJSON(http.MethodGet, backupsPath(id), &list); status != http.StatusOK {
		t.Fatalf("GET backups: %d", status)
	}
	return list
}
