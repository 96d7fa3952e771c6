package acceptance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/pki"
)

// checkClusterTraffic checks, on a running Business instance, that its
// cluster traffic is encrypted and authenticated (issue 12, hole 5):
//   - Patroni's REST API speaks TLS only, with a certificate of the broker's
//     CA naming the node service, and takes changes only with the
//     instance's own Patroni password (not the replication password it
//     used to share);
//   - a replication connection needs TLS, the replication password and a
//     client certificate from the broker's CA: the password alone, or with
//     a certificate of another CA, is refused;
//   - the standby's own replication connection uses TLS with its node
//     certificate.
func checkClusterTraffic(t *testing.T, short string) {
	t.Helper()
	v, _, err := nomadClient(t).Variables().Read(naming.NodesSecretPath(short), nil)
	if err != nil {
		t.Fatalf("read the instance's Variable: %v", err)
	}
	regs, _, err := nomadClient(t).Services().Get(naming.NodeService(short), nil)
	if err != nil || len(regs) == 0 {
		t.Fatalf("node services of %s: %d, %v", short, len(regs), err)
	}
	r := regs[0]
	var api string
	for _, tag := range r.Tags {
		if port, ok := strings.CutPrefix(tag, "patroni="); ok {
			api = r.Address + ":" + port
		}
	}
	if api == "" {
		t.Fatalf("node %s has no patroni=<port> tag: %v", r.AllocID, r.Tags)
	}

	// The REST API.
	verified := patroniClient(t, short, 5*time.Second)
	if resp, err := verified.Get("https://" + api + "/cluster"); err != nil {
		t.Errorf("GET /cluster over TLS, verified by the broker's CA and %s: %v", naming.NodeService(short), err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /cluster over TLS: %s", resp.Status)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + api + "/cluster"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("the REST API answered plain HTTP: %s", resp.Status)
		}
	}
	otherName := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: verified.Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: naming.NodeService("000000000000")}}}
	if resp, err := otherName.Get("https://" + api + "/cluster"); err == nil {
		resp.Body.Close()
		t.Errorf("the REST API's certificate passed as another instance's (%s)", naming.NodeService("000000000000"))
	}
	patch := func(user, password string) int {
		req, _ := http.NewRequest(http.MethodPatch, "https://"+api+"/config", strings.NewReader(`{"loop_wait": 1}`)) // as it is: a change that changes nothing
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := verified.Do(req)
		if err != nil {
			t.Fatalf("PATCH /config: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct{ what, user, password string }{
		{"no credential", "", ""},
		{"the replication password", "patroni", v.Items[naming.ItemReplicationPassword]},
		{"the admin password", "patroni", v.Items[naming.ItemAdminPassword]},
	} {
		if got := patch(c.user, c.password); got != http.StatusUnauthorized {
			t.Errorf("PATCH /config with %s: %d, want 401", c.what, got)
		}
	}
	if got := patch("patroni", v.Items[naming.ItemPatroniPassword]); got != http.StatusOK {
		t.Errorf("PATCH /config with the instance's Patroni password: %d, want 200", got)
	}

	// Replication.
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", string(nodesBrokerCA(t, short)))
	nodeCert := write("node.pem", v.Items["server_certificate"])
	nodeKey := write("node.key", v.Items["server_private_key"])
	now := time.Now()
	strangerCAPEM, strangerCAKey, err := pki.NewCA("not the broker", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	strangerCA, err := pki.ParseCA(strangerCAPEM, strangerCAKey, now)
	if err != nil {
		t.Fatal(err)
	}
	sc, sk, err := strangerCA.IssueClient(naming.NodeService(short), now.Add(time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	strangerCert, strangerKey := write("stranger.pem", string(sc)), write("stranger.key", string(sk))
	replicate := func(params string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=replicator dbname=replication %s", r.Address, strconv.Itoa(r.Port), params))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Password = v.Items[naming.ItemReplicationPassword]
		cfg.RuntimeParams["replication"] = "true"
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
		return err
	}
	verifyCA := "sslmode=verify-ca sslrootcert=" + caFile
	if err := replicate(verifyCA + " sslcert=" + nodeCert + " sslkey=" + nodeKey); err != nil {
		t.Errorf("replication with the password and a node certificate: %v", err)
	}
	// Each refusal must be for the reason under test, not an incidental one.
	for _, c := range []struct{ what, params, because string }{
		{"the password alone over TLS", verifyCA, "client certificate"},
		{"the password and a certificate of another CA", verifyCA + " sslcert=" + strangerCert + " sslkey=" + strangerKey, "certificate"},
		{"the password without TLS", "sslmode=disable", "no encryption"},
	} {
		err := replicate(c.params)
		switch {
		case err == nil:
			t.Errorf("replication admitted with %s", c.what)
		case !strings.Contains(err.Error(), c.because):
			t.Errorf("replication with %s refused, but not for want of %q: %v", c.what, c.because, err)
		default:
			t.Logf("replication with %s refused: %v", c.what, err)
		}
	}

	// The standby replicates over TLS with its node certificate.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last string
	for _, reg := range regs {
		cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%d user=pgbroker_admin dbname=postgres %s", reg.Address, reg.Port, verifyCA))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Password = v.Items[naming.ItemAdminPassword]
		cfg.TLSConfig.ServerName = naming.NodeService(short)
		cfg.TLSConfig.InsecureSkipVerify = false
		cfg.TLSConfig.RootCAs = x509.NewCertPool()
		cfg.TLSConfig.RootCAs.AppendCertsFromPEM(nodesBrokerCA(t, short))
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			last = err.Error()
			continue
		}
		rows, err := conn.Exec(ctx, `SELECT s.ssl::text || ' ' || coalesce(s.client_dn, '') FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name LIKE 'node-%'`).ReadAll()
		conn.Close(ctx)
		if err != nil || len(rows) == 0 || len(rows[0].Rows) == 0 {
			last = fmt.Sprintf("no walsender on %s (%v)", reg.Address, err)
			continue
		}
		got := string(rows[0].Rows[0][0])
		if want := "true /CN=" + naming.NodeService(short); got != want {
			t.Errorf("the standby's replication connection: ssl and client DN %q, want %q", got, want)
		}
		return
	}
	t.Errorf("no node shows the standby's replication connection: %s", last)
}
