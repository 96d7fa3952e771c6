package acceptance

import (
	"context"
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
)

// sslQuery answers t when the session it runs in is encrypted. A binding's
// login acts as the owner role (ALTER ROLE ... IN DATABASE ... SET role),
// which does not see its login's row in pg_stat_ssl; RESET ROLE would go
// back to that same default, so resetRole is SET ROLE NONE (the login).
const (
	resetRole = "SET ROLE NONE"
	sslQuery  = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
)

// TestDatabaseURLConnectsAsHandedOut: the DATABASE_URL (and uri) bind returns
// connects, encrypted, exactly as returned, through libpq (psql) and pgx,
// with no CA file anywhere (no sslrootcert, no PGSSLROOTCERT, an empty
// HOME, so no ~/.postgresql/root.crt): on Starter (one gateway) and on
// Business (two gateways, a multi-host URL). Beside ca_certificate, the
// verify-full form connects once the CA is in a file, and is refused without
// it (that form is what DATABASE_URL used to be).
func TestDatabaseURLConnectsAsHandedOut(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatalf("psql (libpq's client, Debian postgresql-client-15) is needed: %v", err)
	}
	b := newBroker(t) // PGBROKER_BINDING_SSLMODE unset: the default
	c := b.client()
	plans := map[string]string{uuid.NewString(): "postgresql-starter-512", uuid.NewString(): businessPlan}
	ops := map[string]*osb.OperationKey{}
	// Both provisions run at once: Business takes minutes on this machine.
	for id, plan := range plans {
		t.Cleanup(func() { deprovision(t, c, id, plan) })
		resp, err := c.ProvisionInstance(&osb.ProvisionRequest{
			InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, PlanID: plan,
			OrganizationGUID: "org-acceptance", SpaceGUID: "space-acceptance",
		})
		if err != nil || !resp.Async {
			t.Fatalf("provision %s: %v %+v", plan, err, resp)
		}
		ops[id] = resp.OperationKey
	}
	// The broker started with the environment above; from here on, this
	// process has no CA file to find.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("PGSSLROOTCERT", "")
	os.Unsetenv("PGSSLROOTCERT")
	for id := range plans {
		waitOperation(t, c, id, ops[id], 8*time.Minute)
	}
	for id, plan := range plans {
		t.Run(plan, func(t *testing.T) {
			creds := bind(t, c, id, uuid.NewString(), plan, nil)
			checkHandedOut(t, home, creds, plan == businessPlan)
			checkVerifyFullForm(t, home, creds)
		})
	}
}

// checkHandedOut connects with DATABASE_URL and uri exactly as returned.
func checkHandedOut(t *testing.T, home string, creds map[string]any, multiHost bool) {
	t.Helper()
	databaseURL, _ := creds["DATABASE_URL"].(string)
	if creds["uri"] != databaseURL {
		t.Errorf("uri differs from DATABASE_URL %s", redactURI(databaseURL))
	}
	if out, err := psqlAsHandedOut(home, databaseURL); err != nil || out != "t" {
		t.Fatalf("psql with DATABASE_URL %s as returned: %v; output %q, want t (an encrypted session)", redactURI(databaseURL), err, out)
	}
	if !pgxSessionEncrypted(t, databaseURL) {
		t.Fatalf("pgx with DATABASE_URL %s as returned: pg_stat_ssl.ssl is false", redactURI(databaseURL))
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if mode := u.Query().Get("sslmode"); mode != "require" || creds["sslmode"] != "require" || u.Query().Has("sslrootcert") {
		t.Errorf("DATABASE_URL %s, sslmode field %v: want sslmode=require and no sslrootcert", redactURI(databaseURL), creds["sslmode"])
	}
	if multiHost && (strings.Count(u.Host, ",") != 1 || u.Query().Get("target_session_attrs") != "read-write") {
		t.Errorf("Business DATABASE_URL %s does not list both gateways with target_session_attrs=read-write", redactURI(databaseURL))
	}
	t.Logf("DATABASE_URL %s: psql and pgx sessions encrypted", redactURI(databaseURL))
	// What README offers apps that want protection from an active
	// man-in-the-middle without the CA: SCRAM channel binding through the
	// gateways (TLS ends at PostgreSQL, so the binding is to its certificate).
	bound := databaseURL + "&channel_binding=require"
	if out, err := psqlAsHandedOut(home, bound); err != nil || out != "t" {
		t.Errorf("psql with DATABASE_URL&channel_binding=require: %v; output %q", err, out)
	}
	if !pgxSessionEncrypted(t, bound) {
		t.Error("pgx with DATABASE_URL&channel_binding=require: pg_stat_ssl.ssl is false")
	}
}

// checkVerifyFullForm: uri_verify_full (also DATABASE_URL_VERIFY_FULL) is
// refused by psql with no CA file, and connects with ca_certificate in one.
func checkVerifyFullForm(t *testing.T, home string, creds map[string]any) {
	t.Helper()
	vf, _ := creds["uri_verify_full"].(string)
	u, err := url.Parse(vf)
	if err != nil || u.Query().Get("sslmode") != "verify-full" || creds["DATABASE_URL_VERIFY_FULL"] != vf {
		t.Fatalf("uri_verify_full %s / DATABASE_URL_VERIFY_FULL: want one verify-full URL (%v)", redactURI(vf), err)
	}
	if out, err := psqlAsHandedOut(home, vf); err == nil {
		t.Fatalf("psql with uri_verify_full and no CA file connected (%q): it does not verify", out)
	} else {
		t.Logf("uri_verify_full without the CA refused, as it must be: %s", firstLine(out))
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, []byte(creds["ca_certificate"].(string)), 0o600); err != nil {
		t.Fatal(err)
	}
	withCA := vf + "&sslrootcert=" + url.QueryEscape(caFile)
	if out, err := psqlAsHandedOut(home, withCA); err != nil || out != "t" {
		t.Fatalf("psql with uri_verify_full and the CA: %v; output %q, want t", err, out)
	}
	if !pgxSessionEncrypted(t, withCA) {
		t.Fatal("pgx with uri_verify_full and the CA: pg_stat_ssl.ssl is false")
	}
	if jdbc, _ := creds["jdbcUrl_verify_full"].(string); !strings.Contains(jdbc, "sslmode=verify-full") {
		t.Errorf("jdbcUrl_verify_full does not say sslmode=verify-full")
	}
}

// psqlAsHandedOut runs psql with databaseURL and sslQuery in an environment
// holding PATH and an empty HOME only: no PG* variable, no
// ~/.postgresql/root.crt. It returns psql's trimmed output.
func psqlAsHandedOut(home, databaseURL string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "psql", databaseURL, "-XAtq", "-c", resetRole, "-c", sslQuery)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// pgxSessionEncrypted connects with pgx and exactly databaseURL (not
// connect(), which adds the CA) and reads pg_stat_ssl.ssl.
func pgxSessionEncrypted(t *testing.T, databaseURL string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("pgx.Connect with %s: %v", redactURI(databaseURL), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, resetRole); err != nil {
		t.Fatal(err)
	}
	var ssl bool
	if err := conn.QueryRow(ctx, sslQuery).Scan(&ssl); err != nil {
		t.Fatal(err)
	}
	return ssl
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
