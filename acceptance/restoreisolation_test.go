package acceptance

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pgadmin"
)

// boobyTraps are the binding user's objects whose code runs while a dump is
// restored: trap() makes the binding user (whose name, as a literal,
// replaces :binding_user) superuser and writes to
// trap_log whenever it runs with superuser rights, directly or after RESET
// ROLE back to the session user. It sits in a CHECK constraint (run for
// every row the restore copies), an index expression, a trigger and a
// column default; a schema is named after the broker's superuser, the first
// entry of its search path.
const boobyTraps = `
CREATE TABLE trap_log (at timestamptz NOT NULL DEFAULT now(), session_role text, current_role_ text);
CREATE FUNCTION public.trap() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
DECLARE was text := current_user;
BEGIN
  BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
      RESET ROLE;
    END IF;
    IF current_setting('is_superuser') = 'on' OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
      INSERT INTO public.trap_log (session_role, current_role_) VALUES (session_user, current_user);
      EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', :binding_user);
    END IF;
    EXECUTE pg_catalog.format('SET ROLE %I', was);
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN true;
END $f$;
CREATE FUNCTION public.trap_int(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN PERFORM public.trap(); RETURN $1; END $f$;
CREATE FUNCTION public.trap_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.trap(); RETURN NEW; END $f$;
CREATE TABLE trapped (
  id int PRIMARY KEY CHECK (public.trap()),
  body text NOT NULL,
  seen int DEFAULT public.trap_int(1),
  hash text DEFAULT encode(extensions.digest('pgbroker', 'sha256'), 'hex')
);
CREATE INDEX trapped_by_trap ON trapped (public.trap_int(id));
CREATE TRIGGER trapped_trigger BEFORE INSERT OR UPDATE ON trapped FOR EACH ROW EXECUTE FUNCTION public.trap_trigger();
INSERT INTO trapped (id, body) SELECT g, 'row ' || g FROM generate_series(1, 500) g;
CREATE SCHEMA pgbroker_admin;
CREATE FUNCTION pgbroker_admin.digest(text, text) RETURNS bytea LANGUAGE sql AS $f$ SELECT public.trap(); SELECT '\x00'::bytea $f$;
CREATE TABLE pgbroker_admin.decoy (id int CHECK (public.trap()));
INSERT INTO pgbroker_admin.decoy VALUES (1);
`

// roleRights is what pg_roles says of one role, and the roles it is a
// member of (pg_auth_members), sorted.
type roleRights struct {
	Super, CreateRole, CreateDB, Replication, BypassRLS, CanLogin bool
	MemberOf                                                      []string
}

func rightsOf(t *testing.T, conn *pgx.Conn, role string) (roleRights, bool) {
	t.Helper()
	var r roleRights
	err := conn.QueryRow(context.Background(), `
		SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolcanlogin,
			coalesce((SELECT array_agg(g.rolname::text ORDER BY g.rolname) FROM pg_auth_members m
				JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '{}')
		FROM pg_roles r WHERE r.rolname = $1`, role).
		Scan(&r.Super, &r.CreateRole, &r.CreateDB, &r.Replication, &r.BypassRLS, &r.CanLogin, &r.MemberOf)
	if err == pgx.ErrNoRows {
		return r, false
	}
	if err != nil {
		t.Fatalf("read pg_roles of %s: %v", role, err)
	}
	return r, true
}

// TestRestoreRunsNoTenantCodeAsSuperuser: a binding user plants functions
// that make it superuser when run with superuser rights (in a CHECK
// constraint, an index expression, a trigger, a column default, and a
// schema named after the broker's superuser), then takes a dump, changes
// rows and restores the dump in place. The restore succeeds and gives the
// rows back, no trap ran as superuser, no tenant role gained an attribute or
// a membership, the extension the instance had is still there, and the
// restore's own login role can no longer log in.
func TestRestoreRunsNoTenantCodeAsSuperuser(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := uuid.NewString()
	const plan = "postgresql-starter-512"
	provision(t, c, id, plan)
	removeDumps(t, id)
	defer deprovision(t, c, id, plan)
	// An extension the broker manages: the dump then holds its entries.
	if status, body := b.apiCall(t, http.MethodPut, "/api/instances/"+id+"/extensions/pgcrypto", "", nil); status != http.StatusOK {
		t.Fatalf("enable pgcrypto: %d %s", status, body)
	}
	creds := bind(t, c, id, uuid.NewString(), plan, nil)
	user := creds["username"].(string)
	names := pgadmin.NamesOf(naming.ShortID(id))
	tenantRoles := []string{user, names.Owner, names.Reader}

	app := connect(t, creds["DATABASE_URL"].(string))
	mustExec(t, app, strings.ReplaceAll(boobyTraps, ":binding_user", "'"+user+"'"))
	before := map[string]roleRights{}
	for _, role := range tenantRoles {
		r, ok := rightsOf(t, app, role)
		if !ok || r.Super || r.CreateRole || r.CreateDB || r.Replication || r.BypassRLS {
			t.Fatalf("before the restore, role %s = %+v (exists %v): want an existing role without attributes", role, r, ok)
		}
		before[role] = r
	}
	atDump := trappedChecksum(t, app)
	dump := manualDump(t, b, id)
	mustExec(t, app, "DELETE FROM trapped WHERE id > 250")
	mustExec(t, app, "UPDATE trapped SET body = 'changed' WHERE id % 7 = 0")
	if trappedChecksum(t, app) == atDump {
		t.Fatal("the changes did not change the checksum")
	}
	app.Close(context.Background())

	op := askRestore(t, b, id, dump.ID)
	waitOperation(t, c, id, &op, 3*time.Minute)
	lo, err := c.PollLastOperation(&osb.LastOperationRequest{InstanceID: id})
	if err != nil || lo.State != osb.StateSucceeded {
		t.Fatalf("last_operation after restore = %+v, %v; want succeeded", lo, err)
	}

	// Extension changes run as the superuser too: with the traps planted,
	// enable one that needs another (CASCADE) and disable both.
	for _, step := range []struct{ method, name string }{{http.MethodPut, "earthdistance"}, {http.MethodDelete, "earthdistance"}, {http.MethodDelete, "cube"}} {
		if status, body := b.apiCall(t, step.method, "/api/instances/"+id+"/extensions/"+step.name, "", nil); status/100 != 2 {
			t.Fatalf("%s extension %s: %d %s", step.method, step.name, status, body)
		}
	}

	app = connect(t, creds["DATABASE_URL"].(string))
	if got := trappedChecksum(t, app); got != atDump {
		t.Errorf("after restore trapped checksum %s, want %s (dump time)", got, atDump)
	}
	if n := count(t, app, "trap_log"); n != 0 {
		t.Errorf("trap_log holds %d rows: tenant code ran as superuser during the restore or an extension change", n)
	}
	if n := count(t, app, "pgbroker_admin.decoy"); n != 1 {
		t.Errorf("the schema named pgbroker_admin came back with %d rows in decoy, want 1", n)
	}
	for _, role := range tenantRoles {
		r, _ := rightsOf(t, app, role)
		if r.Super || r.CreateRole || r.CreateDB || r.Replication || r.BypassRLS || !slices.Equal(r.MemberOf, before[role].MemberOf) {
			t.Errorf("after the restore, role %s = %+v; want no attribute and the memberships %v it had", role, r, before[role].MemberOf)
		}
	}
	restorer, ok := rightsOf(t, app, "pgbroker_restore")
	if !ok || restorer.CanLogin || restorer.Super || len(restorer.MemberOf) != 0 {
		t.Errorf("after the restore, pgbroker_restore = %+v (exists %v); want a role that cannot log in, member of nothing", restorer, ok)
	}
	var extensions []string
	if err := app.QueryRow(context.Background(), `SELECT array_agg(extname::text ORDER BY extname) FROM pg_extension`).Scan(&extensions); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(extensions, "pgcrypto") {
		t.Errorf("pg_extension after the restore = %v, want pgcrypto kept", extensions)
	}
	// The binding still writes; the trap it planted runs as itself.
	mustExec(t, app, "INSERT INTO trapped (id, body) VALUES (9000, 'after the restore')")
	var hash string
	if err := app.QueryRow(context.Background(), `SELECT hash FROM trapped WHERE id = 9000`).Scan(&hash); err != nil || len(hash) != 64 {
		t.Errorf("default through pgcrypto after the restore = %q, %v; want a sha256 in hex", hash, err)
	}
	assertNoBatchJobsLeft(t, id, "dump", "restore")
}

// trappedChecksum is an md5 over every row of trapped, in id order.
func trappedChecksum(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var sum string
	err := conn.QueryRow(context.Background(),
		`SELECT md5(coalesce(string_agg(id || ':' || body, ',' ORDER BY id), '')) || ':' || count(*) FROM trapped`).Scan(&sum)
	if err != nil {
		t.Fatalf("checksum trapped: %v", err)
	}
	return sum
}
