package acceptance

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"
)

// extensionsIn returns pg_extension's names (plpgsql aside), sorted.
func extensionsIn(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY extname")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestEnablingExtensionsShowsInPgExtension: pgcrypto and hstore enabled
// through the API are in pg_extension at once and work; disabling drops
// them; a name not installed on the nodes gets 422 naming the allowed ones
// and changes nothing.
func TestEnablingExtensionsShowsInPgExtension(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := provisionTemporary(t, c, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	base := "/api/instances/" + id + "/extensions"

	for _, name := range []string{"pgcrypto", "hstore"} {
		var got struct {
			Name    string
			Enabled bool
			Version string
		}
		if status, body := b.apiCall(t, "PUT", base+"/"+name, "", &got); status != 200 || !got.Enabled || got.Version == "" {
			t.Fatalf("enable %s: %d %s", name, status, body)
		}
	}
	var e struct{ Error, Description string }
	if status, _ := b.apiCall(t, "PUT", base+"/postgis", "", &e); status != 422 || e.Error != "ExtensionNotAvailable" ||
		!strings.Contains(e.Description, "pgcrypto") {
		t.Errorf("enable postgis: %d %+v, want 422 naming the allowed extensions", status, e)
	}
	app := connect(t, creds["DATABASE_URL"].(string))
	if got := extensionsIn(t, app); !slices.Equal(got, []string{"hstore", "pgcrypto"}) {
		t.Fatalf("pg_extension = %v, want hstore and pgcrypto", got)
	}
	var digest, value string
	if err := app.QueryRow(context.Background(),
		`SELECT encode(digest('abc', 'sha256'), 'hex'), ('a=>1'::hstore) -> 'a'`).Scan(&digest, &value); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(digest, "ba7816bf") || value != "1" {
		t.Fatalf("pgcrypto digest %s, hstore value %s", digest, value)
	}
	// They live in the schema the superuser owns, which tenants use but
	// cannot write (issue 12, hole 2), found unqualified through the
	// database's search_path.
	var schemas []string
	var canCreate bool
	if err := app.QueryRow(context.Background(), `SELECT array_agg(DISTINCT extnamespace::regnamespace::text),
		has_schema_privilege(current_user, 'extensions', 'CREATE') FROM pg_extension WHERE extname IN ('hstore', 'pgcrypto')`).
		Scan(&schemas, &canCreate); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(schemas, []string{"extensions"}) || canCreate {
		t.Fatalf("extensions in schemas %v, binding may create there: %v; want only \"extensions\", not writable", schemas, canCreate)
	}
	var list struct {
		Extensions []struct {
			Name            string
			Enabled         bool
			RequiresRestart bool `json:"requires_restart"`
		}
	}
	b.apiCall(t, "GET", base, "", &list)
	for _, x := range list.Extensions {
		if x.Enabled != (x.Name == "hstore" || x.Name == "pgcrypto") {
			t.Errorf("listed %+v", x)
		}
		if x.RequiresRestart != (x.Name == "pg_stat_statements") {
			t.Errorf("listed %+v", x)
		}
	}

	// In use: refused with 409, nothing dropped.
	mustExec(t, app, "CREATE TABLE kv (h hstore)")
	if status, _ := b.apiCall(t, "DELETE", base+"/hstore", "", &e); status != 409 || e.Error != "ExtensionInUse" {
		t.Errorf("disable hstore in use: %d %s, want 409 ExtensionInUse", status, e.Error)
	}
	mustExec(t, app, "DROP TABLE kv")
	for _, name := range []string{"hstore", "pgcrypto"} {
		if status, body := b.apiCall(t, "DELETE", base+"/"+name, "", nil); status != 204 {
			t.Fatalf("disable %s: %d %s", name, status, body)
		}
	}
	if got := extensionsIn(t, app); len(got) != 0 {
		t.Fatalf("pg_extension after disabling = %v", got)
	}
}

// TestEnablingPgStatStatementsRestartsAsAnOperation: pg_stat_statements
// needs shared_preload_libraries, so enabling it is an OSB update operation
// (202, then last_operation) that restarts the node; then the extension is
// in pg_extension and its view answers. Disabling is an operation too and
// drops it.
func TestEnablingPgStatStatementsRestartsAsAnOperation(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := provisionTemporary(t, c, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	uri := creds["DATABASE_URL"].(string)
	base := "/api/instances/" + id + "/extensions/pg_stat_statements"
	before := connect(t, uri)
	started := postmasterStart(t, before)
	before.Close(context.Background())

	var op struct{ Operation, State string }
	asked := time.Now()
	if status, body := b.apiCall(t, "PUT", base, "", &op); status != 202 || op.Operation == "" || op.State != "in progress" {
		t.Fatalf("enable pg_stat_statements: %d %s, want 202 with an operation", status, body)
	}
	key := osb.OperationKey(op.Operation)
	waitOperation(t, c, id, &key, 3*time.Minute)
	t.Logf("enabling pg_stat_statements (restart included) took %s", time.Since(asked).Round(time.Millisecond))

	app := connect(t, uri)
	if got := extensionsIn(t, app); !slices.Equal(got, []string{"pg_stat_statements"}) {
		t.Fatalf("pg_extension = %v", got)
	}
	if now := postmasterStart(t, app); !now.After(started) {
		t.Fatalf("PostgreSQL did not restart (started %s, now %s)", started, now)
	}
	// Without the library preloaded the view errors ("must be loaded via
	// shared_preload_libraries"), so an answer shows the restart took it.
	var calls int64
	if err := app.QueryRow(context.Background(), "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements").Scan(&calls); err != nil {
		t.Fatalf("pg_stat_statements does not answer: %v", err)
	}
	inst, err := c.GetInstance(&osb.GetInstanceRequest{InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := inst.Parameters["extensions"].([]any); len(got) != 1 || got[0] != "pg_stat_statements" {
		t.Errorf("GET instance parameters %v, want extensions [pg_stat_statements]", inst.Parameters)
	}
	app.Close(context.Background())

	if status, body := b.apiCall(t, "DELETE", base, "", &op); status != 202 {
		t.Fatalf("disable pg_stat_statements: %d %s, want 202", status, body)
	}
	key = osb.OperationKey(op.Operation)
	waitOperation(t, c, id, &key, 3*time.Minute)
	after := connect(t, uri)
	if got := extensionsIn(t, after); len(got) != 0 {
		t.Fatalf("pg_extension after disabling = %v", got)
	}
}

// TestExtensionsAsProvisionAndUpdateParameters: provision with extensions
// creates them; an update with a new list creates and drops; a name not
// installed is 422 and changes nothing.
func TestExtensionsAsProvisionAndUpdateParameters(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	t.Cleanup(func() { deprovision(t, c, id, "postgresql-sandbox") })
	resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
		InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: "postgresql-sandbox",
		OrganizationGUID: "org", SpaceGUID: "space", Parameters: map[string]any{"extensions": []string{"pgcrypto", "citext"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitOperation(t, c, id, resp.OperationKey, 3*time.Minute)
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	app := connect(t, creds["DATABASE_URL"].(string))
	if got := extensionsIn(t, app); !slices.Equal(got, []string{"citext", "pgcrypto"}) {
		t.Fatalf("after provision pg_extension = %v", got)
	}

	_, err = c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID,
		Parameters: map[string]any{"extensions": []string{"pgcrypto", "not_an_extension"}}})
	if err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "not_an_extension") {
		t.Fatalf("update with an unknown extension: %v, want 422 naming it", err)
	}
	update(t, c, id, map[string]any{"extensions": []string{"hstore", "pgcrypto"}})
	if got := extensionsIn(t, app); !slices.Equal(got, []string{"hstore", "pgcrypto"}) {
		t.Fatalf("after update pg_extension = %v, want hstore and pgcrypto (citext dropped)", got)
	}
}
