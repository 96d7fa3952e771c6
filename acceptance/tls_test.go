package acceptance

import (
	"context"
	"crypto/tls"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	osb "sigs.k8s.io/go-open-service-broker-client/v2"

	"github.com/pgbroker/pgbroker/pki"
)

// TestVerifyFullWithCACertificateConnects: credentials say
// sslmode=verify-full and carry the CA; with it a client checks the chain and
// the host name and gets a TLS (1.2 or later) session through the gateway. A
// client trusting another CA is refused.
func TestVerifyFullWithCACertificateConnects(t *testing.T) {
	b := newBroker(t)
	c := b.client()
	id := provisionTemporary(t, c, "postgresql-sandbox")
	creds := bind(t, c, id, uuid.NewString(), "postgresql-sandbox", nil)

	if creds["sslmode"] != "verify-full" {
		t.Errorf("sslmode = %v, want verify-full", creds["sslmode"])
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
