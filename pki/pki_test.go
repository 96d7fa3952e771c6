package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

func newTestCA(t *testing.T, now time.Time) *CA {
	t.Helper()
	certPEM, keyPEM, err := NewCA("pgbroker test CA", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ParseCA(certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssuedCertificateVerifiesForItsHostsOnly(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, now)
	certPEM, keyPEM, err := ca.Issue(ServerRequest{CommonName: "pg-abc-node", Hosts: []string{"127.0.0.1", "db.example.com", "pg-abc-node"},
		NotAfter: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("key pair: %v", err)
	}
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "db.example.com", "pg-abc-node"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host, CurrentTime: now}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
		if !Covers(cert, host) {
			t.Errorf("Covers(%s) = false", host)
		}
	}
	for _, host := range []string{"127.0.0.2", "other.example.com"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host, CurrentTime: now}); err == nil {
			t.Errorf("verify for %s succeeded", host)
		}
		if Covers(cert, host) {
			t.Errorf("Covers(%s) = true", host)
		}
	}
	if !ca.Signed(cert) {
		t.Error("Signed = false for the CA's own certificate")
	}
	if other := newTestCA(t, now); other.Signed(cert) {
		t.Error("another CA claims the certificate")
	}
	if got := cert.IPAddresses; len(got) != 1 || !got[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IP SANs %v", got)
	}
}

func TestIssuedCertificateCannotOutliveTheCA(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, now)
	certPEM, _, err := ca.Issue(ServerRequest{CommonName: "x", Hosts: []string{"x"}, NotAfter: now.Add(1000 * time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ParseCertificate(certPEM)
	if cert.NotAfter.After(ca.Cert.NotAfter) {
		t.Errorf("certificate ends %s after the CA %s", cert.NotAfter, ca.Cert.NotAfter)
	}
}

func TestParseCARefusesBadInput(t *testing.T) {
	now := time.Now()
	certPEM, keyPEM, _ := NewCA("a", time.Hour, now)
	_, otherKey, _ := NewCA("b", time.Hour, now)
	ca := newTestCA(t, now)
	leafPEM, leafKey, _ := ca.Issue(ServerRequest{CommonName: "x", Hosts: []string{"x"}, NotAfter: now.Add(time.Hour)}, now)
	cases := []struct {
		name      string
		cert, key []byte
		at        time.Time
		want      string
	}{
		{"not pem", []byte("junk"), keyPEM, now, "not a PEM"},
		{"key mismatch", certPEM, otherKey, now, "does not match"},
		{"not a CA", leafPEM, leafKey, now, "not a CA"},
		{"expired", certPEM, keyPEM, now.Add(2 * time.Hour), "expired"},
		{"key not pem", certPEM, []byte("junk"), now, "not PEM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseCA(c.cert, c.key, c.at)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
