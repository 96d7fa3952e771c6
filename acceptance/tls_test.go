package acceptance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/pki"
)

// TestVerifyFullWithCACertificateConnects: with PGBROKER_BINDING_SSLMODE=
// verify-full, credentials say sslmode=verify-full and carry the CA; with it
// a client checks the chain and the host name and gets a TLS (1.2 or later)
// session through the gateway. A client trusting another CA is refused.
func TestVerifyFullWithCACertificateConnects(t *testing.T) {
	b := newBroker(t, "PGBROKER_BINDING_SSLMODE=verify-full")
	c := b.client()
	id := provisionTemporary(t, c, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)

	if creds["sslmode"] != "verify-full" {
		t.Errorf("sslmode = %v, want verify-full", creds["sslmode"])
	}
	if creds["uri_verify_full"] != creds["DATABASE_URL"] || creds["DATABASE_URL_VERIFY_FULL"] != creds["DATABASE_URL"] {
		t.Errorf("uri_verify_full and DATABASE_URL_VERIFY_FULL differ from DATABASE_URL when verify-full is the default")
	}
	ca, _ := creds["ca_certificate"].(string)
	caCert, err := pki.ParseCertificate([]byte(ca))
	if err != nil || !caCert.IsCA {
		t.Fatalf("ca_certificate is not a CA certificate: %v", err)
	}
	uri := creds["DATABASE_URL"].(string)
	if u, _ := url.Parse(uri); u.Query().Get("sslmode") != "verify-full" {
		t.Errorf("DATABASE_URL %s does not say sslmode=verify-full", redactURI(uri))
	}
	jdbc, _ := url.Parse(strings.TrimPrefix(creds["jdbcUrl"].(string), "jdbc:"))
	if jdbc.Query().Get("ssl") != "true" || jdbc.Query().Get("sslmode") != "verify-full" {
		t.Errorf("jdbcUrl lacks ssl=true&sslmode=verify-full: %v", jdbc.Query().Get("sslmode"))
	}

	conn := connect(t, uri)
	mustExec(t, conn, "SELECT 1")
	t.Logf("verify-full session: %s", tlsVersion(t, conn))

	// Another CA: the same URL must not connect.
	otherPEM, _, err := pki.NewCA("not the broker", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other-ca.crt")
	if err := os.WriteFile(other, otherPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if conn, err := tryConnect(uri + "&sslrootcert=" + url.QueryEscape(other)); err == nil {
		conn.Close(context.Background())
		t.Fatal("verify-full with another CA connected")
	}
}

// tlsVersion returns the TLS version of a connection ("TLS 1.3"); it fails
// the test for a plaintext one or one older than TLS 1.2.
func tlsVersion(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		t.Fatal("the connection is not TLS")
	}
	v := tc.ConnectionState().Version
	if v < tls.VersionTLS12 {
		t.Fatalf("TLS version %s, want 1.2 or later", tls.VersionName(v))
	}
	return tls.VersionName(v)
}

// redactURI drops the password from a URI for messages.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	return u.Redacted()
}

// provisionTemporary provisions an instance that is deprovisioned when the
// test ends (before its broker stops), so the shared Nomad agent keeps
// nothing of it.
func provisionTemporary(t *testing.T, c osb.Client, planID string) string {
	t.Helper()
	id := uuid.NewString()
	t.Cleanup(func() { deprovision(t, c, id, planID) })
	provision(t, c, id, planID)
	return id
}

// update asks for an update with parameters and waits for it to succeed.
func update(t *testing.T, c osb.Client, id string, params map[string]any) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("update %v took %s", params, time.Since(start).Round(time.Millisecond)) }()
	up, err := c.UpdateInstance(&osb.UpdateInstanceRequest{InstanceID: id, AcceptsIncomplete: true, ServiceID: serviceID, Parameters: params})
	if err != nil {
		t.Fatalf("update %v: %v", params, err)
	}
	if !up.Async {
		t.Fatalf("update %v answered synchronously", params)
	}
	waitOperation(t, c, id, up.OperationKey, 3*time.Minute)
}

// plaintext turns a DATABASE_URL into one that refuses TLS.
func plaintext(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return databaseURL
	}
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// postmasterStart returns pg_postmaster_start_time(): it changes only when
// PostgreSQL restarts.
func postmasterStart(t *testing.T, conn *pgx.Conn) time.Time {
	t.Helper()
	var at time.Time
	if err := conn.QueryRow(context.Background(), "SELECT pg_postmaster_start_time()").Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// TestForceTLSRefusesPlaintext: with force_tls on, a plaintext connection is
// refused (SQLSTATE 28000, "no encryption") and a TLS one works; off again,
// plaintext works. Neither change restarts PostgreSQL.
func TestForceTLSRefusesPlaintext(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := provisionTemporary(t, c, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	uri := creds["DATABASE_URL"].(string)

	plain := connect(t, plaintext(uri))
	if _, ok := plain.PgConn().Conn().(*tls.Conn); ok {
		t.Fatal("sslmode=disable gave a TLS connection")
	}
	started := postmasterStart(t, plain)
	plain.Close(context.Background())

	update(t, c, id, map[string]any{"force_tls": true})
	conn, err := tryConnect(plaintext(uri))
	if err == nil {
		conn.Close(context.Background())
		t.Fatal("plaintext connection accepted with force_tls on")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28000" || !strings.Contains(pgErr.Message, "no encryption") {
		t.Fatalf("plaintext connection refused with %v, want SQLSTATE 28000 naming no encryption", err)
	}
	secure := connect(t, uri)
	tlsVersion(t, secure)
	if got := postmasterStart(t, secure); !got.Equal(started) {
		t.Fatalf("PostgreSQL restarted (started %s, now %s): force_tls must reload only", started, got)
	}
	inst, err := c.GetInstance(&osb.GetInstanceRequest{InstanceID: id})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Parameters["force_tls"] != true {
		t.Errorf("GET instance parameters %v lack force_tls: true", inst.Parameters)
	}

	update(t, c, id, map[string]any{"force_tls": false})
	again := connect(t, plaintext(uri))
	if got := postmasterStart(t, again); !got.Equal(started) {
		t.Fatalf("PostgreSQL restarted turning force_tls off")
	}
}

// serverCertificate returns the certificate a connection's server presented.
func serverCertificate(t *testing.T, conn *pgx.Conn) *x509.Certificate {
	t.Helper()
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		t.Fatal("the connection is not TLS")
	}
	return tc.ConnectionState().PeerCertificates[0]
}

// TestCertificateRenewedWithoutRestart: with a short certificate lifetime,
// the periodic renewal issues a new certificate before the old one expires;
// PostgreSQL serves it to new connections (still verify-full) without a
// restart, and a session opened before keeps working.
func TestCertificateRenewedWithoutRestart(t *testing.T) {
	b := newBroker(t, "PGBROKER_CERT_LIFETIME=3m", "PGBROKER_CERT_RENEW_BEFORE=2m50s", "PGBROKER_CERT_RENEW_INTERVAL=2s")
	c := b.client()
	id := provisionTemporary(t, c, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)
	uri := creds["DATABASE_URL"].(string)

	held := connect(t, uri)
	first := serverCertificate(t, held)
	started := postmasterStart(t, held)
	if left := time.Until(first.NotAfter); left > 3*time.Minute {
		t.Fatalf("certificate valid %s more, want at most the configured 3m", left)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn := connect(t, uri) // verify-full with the credentials' CA
		cert := serverCertificate(t, conn)
		conn.Close(context.Background())
		if !cert.Equal(first) {
			t.Logf("renewed: serial %x -> %x, now valid until %s", first.SerialNumber, cert.SerialNumber, cert.NotAfter.UTC().Format(time.RFC3339))
			if !cert.NotAfter.After(first.NotAfter) {
				t.Errorf("the new certificate ends %s, not after the old %s", cert.NotAfter, first.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate not renewed within 90 s; log:\n%s", tail(b.logs.String(), 40))
		}
		time.Sleep(time.Second)
	}
	mustExec(t, held, "SELECT 1")
	if now := postmasterStart(t, held); !now.Equal(started) {
		t.Fatalf("PostgreSQL restarted for the renewal (started %s, now %s)", started, now)
	}
}
