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

// TestIPsAsDNSNameTheAddressTwice: with IPsAsDNS an address is both an IP
// SAN and a DNS SAN (what pgBackRest 2.45 checks); without, an IP SAN only.
func TestIPsAsDNSNameTheAddressTwice(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, now)
	for _, asDNS := range []bool{false, true} {
		certPEM, _, err := ca.Issue(ServerRequest{CommonName: "pg-abc-node", Hosts: []string{"10.0.0.7", "pg-abc-node"},
			NotAfter: now.Add(time.Hour), IPsAsDNS: asDNS}, now)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ParseCertificate(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"pg-abc-node"}
		if asDNS {
			want = []string{"10.0.0.7", "pg-abc-node"}
		}
		if strings.Join(cert.DNSNames, ",") != strings.Join(want, ",") || len(cert.IPAddresses) != 1 {
			t.Errorf("IPsAsDNS %v: DNS SANs %v, IP SANs %v; want DNS %v and one IP", asDNS, cert.DNSNames, cert.IPAddresses, want)
		}
	}
}

// TestClientCertificateAuthenticatesToATLSServer: a client certificate from
// IssueClient completes a mutual TLS handshake with a server that requires
// one signed by the CA, and carries its CN.
func TestClientCertificateAuthenticatesToATLSServer(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, now)
	srvPEM, srvKey, err := ca.Issue(ServerRequest{CommonName: "srv", Hosts: []string{"127.0.0.1"}, NotAfter: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	cliPEM, cliKey, err := ca.IssueClient("pgbroker-basebackup", now.Add(time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	srvPair, err := tls.X509KeyPair(srvPEM, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	cliPair, err := tls.X509KeyPair(cliPEM, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvPair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			got <- err.Error()
			return
		}
		got <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{Certificates: []tls.Certificate{cliPair}, RootCAs: ca.Pool(),
		ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Handshake()
	conn.Close()
	if cn := <-got; cn != "pgbroker-basebackup" {
		t.Errorf("server saw %q, want the client CN pgbroker-basebackup", cn)
	}
	if _, _, err := ca.IssueClient("x", now, now); err == nil {
		t.Error("IssueClient accepted a notAfter that is not in the future")
	}
}
