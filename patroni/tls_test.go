package patroni

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgbroker/pgbroker/pki"
)

// testCA returns a CA of the broker's kind (pki) and a server TLS
// certificate it issued naming hosts.
func testCA(t *testing.T, hosts ...string) (*pki.CA, tls.Certificate) {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := pki.NewCA("test CA", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCA(certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.Issue(pki.ServerRequest{CommonName: hosts[0], Hosts: hosts, NotAfter: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca, pair
}

// A member's REST API is trusted only when its certificate comes from the
// broker's CA and names the instance's node service: another instance's
// certificate, or one of another CA, is refused, as is plain HTTP.
func TestRESTAPIIsVerifiedByCAAndNodeServiceName(t *testing.T) {
	ca, pair := testCA(t, "pg-aaaa-node")
	_, otherPair := testCA(t, "pg-aaaa-node")
	verify := func(name string) *tls.Config { return &tls.Config{RootCAs: ca.Pool(), ServerName: name} }
	serve := func(cert tls.Certificate) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodOptions {
				return // health endpoints need no authentication
			}
			if u, p, ok := r.BasicAuth(); !ok || u != "patroni" || p != "pw" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = w.Write([]byte(`{"members":[{"name":"node-0","role":"leader","state":"running"}]}`))
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	good, foreign := serve(pair), serve(otherPair)
	members := func(base string, cfg *tls.Config) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := New(func(context.Context) ([]string, error) { return []string{base}, nil }, "pw", cfg).Members(ctx)
		return err
	}
	if err := members(good.URL, verify("pg-aaaa-node")); err != nil {
		t.Fatalf("the instance's own member, verified: %v", err)
	}
	if err := members(good.URL, verify("pg-bbbb-node")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a certificate naming pg-aaaa-node accepted for pg-bbbb-node: %v", err)
	}
	if err := members(foreign.URL, verify("pg-aaaa-node")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a certificate of another CA accepted: %v", err)
	}
	if err := members(strings.Replace(good.URL, "https://", "http://", 1), verify("pg-aaaa-node")); err == nil {
		t.Error("plain HTTP to a TLS-only REST API answered")
	}
	if !Answers(context.Background(), good.URL, "/primary", verify("pg-aaaa-node")) {
		t.Error("Answers: the verified member did not answer")
	}
	if Answers(context.Background(), foreign.URL, "/primary", verify("pg-aaaa-node")) {
		t.Error("Answers: a member with another CA's certificate counted as answering")
	}
}
