package acceptance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

// TestStarterLifecycle is the product end to end: catalog, provision,
// bindings (read-write, read-only), unbind, plan change, deprovision.
func TestStarterLifecycle(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	ctx := context.Background()

	cat, err := c.GetCatalog()
	if err != nil {
		t.Fatal(err)
	}
	plans := map[string]bool{}
	for _, p := range cat.Services[0].Plans {
		plans[p.ID] = true
	}
	for _, id := range []string{"postgresql-sandbox", "postgresql-starter-512", "postgresql-starter-1024", "postgresql-starter-2048",
		"postgresql-starter-4096", "postgresql-starter-8192", "postgresql-business-512", "postgresql-business-1024",
		"postgresql-business-2048", "postgresql-business-4096", "postgresql-business-8192"} {
		if !plans[id] {
			t.Errorf("catalog lacks plan %s", id)
		}
	}
	if len(plans) != 11 {
		t.Errorf("catalog has %d plans, want 11", len(plans))
	}

	id := uuid.NewString()
	took := provision(t, c, id, "postgresql-starter-512")
	t.Logf("provisioned postgresql-starter-512 in %s", took)
	if got := nodeJobsNamed(t, id); got != 1 {
		t.Fatalf("%d node jobs, want 1", got)
	}

	rw := bind(t, c, id, uuid.NewString(), "postgresql-starter-512", nil)
	for _, key := range []string{"uri", "DATABASE_URL", "jdbcUrl", "host", "port", "database", "username", "password", "sslmode", "read_only"} {
		if _, ok := rw[key]; !ok {
			t.Errorf("credentials lack %q", key)
		}
	}
	url := rw["DATABASE_URL"].(string)
	if rw["uri"] != url {
		t.Errorf("uri %v differs from DATABASE_URL", rw["uri"])
	}
	app := connect(t, url)
	mustExec(t, app, "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
	mustExec(t, app, "INSERT INTO notes (body) VALUES ('first')")
	var body string
	if err := app.QueryRow(ctx, "SELECT body FROM notes WHERE id = 1").Scan(&body); err != nil || body != "first" {
		t.Fatalf("read back %q, %v", body, err)
	}

	secondID := uuid.NewString()
	second := bind(t, c, id, secondID, "postgresql-starter-512", nil)
	other := connect(t, second["DATABASE_URL"].(string))
	mustExec(t, other, "INSERT INTO notes (body) VALUES ('second')")
	mustExec(t, other, "CREATE TABLE made_by_second (n int)")
	mustExec(t, other, "INSERT INTO made_by_second VALUES (7)")
	if n := count(t, app, "notes"); n != 2 {
		t.Fatalf("first binding sees %d notes, want 2", n)
	}

	roID := uuid.NewString()
	ro := bind(t, c, id, roID, "postgresql-starter-512", map[string]any{"read_only": true})
	if ro["read_only"] != true {
		t.Errorf("read_only binding says read_only=%v", ro["read_only"])
	}
	reader := connect(t, ro["DATABASE_URL"].(string))
	if n := count(t, reader, "notes"); n != 2 {
		t.Fatalf("read-only binding sees %d notes, want 2", n)
	}
	_, err = reader.Exec(ctx, "INSERT INTO notes (body) VALUES ('nope')")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("read-only write: err %v, want SQLSTATE 42501", err)
	}

	// GET binding returns the same credentials.
	got, err := c.GetBinding(&osb.GetBindingRequest{InstanceID: id, BindingID: secondID})
	if err != nil {
		t.Fatal(err)
	}
	if got.Credentials["DATABASE_URL"] != second["DATABASE_URL"] {
		t.Fatalf("GET binding returned other credentials")
	}

	// Unbind: the role cannot log in; what it created stays.
	if _, err := c.Unbind(&osb.UnbindRequest{InstanceID: id, BindingID: secondID, ServiceID: serviceID, PlanID: "postgresql-starter-512"}); err != nil {
		t.Fatal(err)
	}
	if conn, err := tryConnect(second["DATABASE_URL"].(string)); err == nil {
		conn.Close(ctx)
		t.Fatal("unbound role can still log in")
	}
	if n := count(t, app, "made_by_second"); n != 1 {
		t.Fatalf("table created by the unbound role has %d rows, want 1", n)
	}
	var owner string
	if err := app.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_second'").Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if owner != rw["database"] {
		t.Fatalf("table owner %q, want the owner role %v", owner, rw["database"])
	}

	// No password handed out appears in the broker's log or in Nomad's job specs.
	assertNoSecretLeak(t, b, id, rw["password"].(string), second["password"].(string), ro["password"].(string))

	// Plan change: same URL, rows kept, Nomad shows the new memory.
	app.Close(ctx)
	plan := "postgresql-starter-1024"
	up, err := c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: &plan})
	if err != nil {
		t.Fatal(err)
	}
	waitOperation(t, c, id, up.OperationKey, 3*time.Minute)
	if mem := nodeMemoryMiB(t, id); mem != 1024 {
		t.Fatalf("node job memory %d MiB after update, want 1024", mem)
	}
	again := connect(t, url)
	if n := count(t, again, "notes"); n != 2 {
		t.Fatalf("after plan change %d notes, want 2", n)
	}
	inst, err := c.GetInstance(&osb.GetInstanceRequest{InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	if inst.PlanID != plan {
		t.Fatalf("GET instance plan %s, want %s", inst.PlanID, plan)
	}
	again.Close(ctx)
	reader.Close(ctx)

	deprovision(t, c, id, plan)
	if n := nodeJobsNamed(t, id); n != 0 {
		t.Fatalf("%d node jobs left after deprovision", n)
	}
	if exists(dataDir(id)) {
		t.Fatalf("data directory %s left after deprovision", dataDir(id))
	}
	if left := instanceVariables(t, id); len(left) > 0 {
		t.Fatalf("Nomad Variables left after deprovision: %v", left)
	}
	_, err = c.PollLastOperation(&osb.LastOperationRequest{InstanceID: id})
	if !osb.IsGoneError(err) {
		t.Fatalf("last_operation after deprovision: %v, want 410", err)
	}
}

// TestSandboxProvisionsAndDeprovisions: the free plan works too.
func TestSandboxProvisionsAndDeprovisions(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	provision(t, c, id, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	conn := connect(t, creds["DATABASE_URL"].(string))
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %d, %v", one, err)
	}
	// The catalog's autovacuum_naptime_s reaches the node (issue 18: idle Sandboxes).
	var naptime string
	if err := conn.QueryRow(context.Background(), "SHOW autovacuum_naptime").Scan(&naptime); err != nil || naptime != "5min" {
		t.Errorf("autovacuum_naptime %q (%v), want 5min", naptime, err)
	}
	conn.Close(context.Background())
	deprovision(t, c, id, "postgresql-sandbox")
	if exists(dataDir(id)) {
		t.Fatal("data directory left after deprovision")
	}
}

func deprovision(t testing.TB, c osb.Client, id, plan string) {
	t.Helper()
	resp, err := c.DeprovisionInstance(&osb.DeprovisionRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		lo, err := c.PollLastOperation(&osb.LastOperationRequest{InstanceID: id, OperationKey: resp.OperationKey})
		if osb.IsGoneError(err) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if lo.State == osb.StateSucceeded {
			return
		}
		if lo.State == osb.StateFailed {
			t.Fatalf("deprovision failed: %v", *lo.Description)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("deprovision did not finish in 2 minutes")
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, conn *pgx.Conn, table string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count(*) FROM %s", table)).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func tryConnect(databaseURL string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return pgx.Connect(ctx, withRootCert(databaseURL))
}
