package credentials

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// noRootCert keeps pgx's ParseConfig from finding a CA file outside the
// URL (~/.postgresql/root.crt, PGSSLROOTCERT), as on an application's host.
func noRootCert(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PGSSLROOTCERT", "")
}

func TestNewBuildsMatchingURIs(t *testing.T) {
	c := New(Endpoint{Host: "127.0.0.1", Port: 35000, SSLMode: "disable"}, "db_abc", "u_1", "p@ss/w:rd", true)
	if c.URI != c.DatabaseURL {
		t.Fatalf("DATABASE_URL %q differs from uri %q", c.DatabaseURL, c.URI)
	}
	u, err := url.Parse(c.URI)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	if u.Scheme != "postgres" || u.Host != "127.0.0.1:35000" || u.Path != "/db_abc" || u.User.Username() != "u_1" || pw != "p@ss/w:rd" {
		t.Fatalf("uri %q does not carry the parts", c.URI)
	}
	if got := u.Query().Get("sslmode"); got != "disable" {
		t.Fatalf("sslmode = %q", got)
	}
	j, err := url.Parse(c.JDBCURL[len("jdbc:"):])
	if err != nil {
		t.Fatal(err)
	}
	if j.Query().Get("password") != "p@ss/w:rd" || j.Query().Get("ssl") != "false" || j.Host != "127.0.0.1:35000" {
		t.Fatalf("jdbcUrl %q does not carry the parts", c.JDBCURL)
	}
	if !c.ReadOnly || c.Port != 35000 || c.Database != "db_abc" {
		t.Fatalf("fields wrong: %+v", c)
	}
}

func TestVerifyFullCarriesTheCAAndTurnsSSLOnInJDBC(t *testing.T) {
	c := New(Endpoint{Host: "db.example.com", Port: 35000, SSLMode: "verify-full", CACertificate: testCA}, "db_abc", "u_1", "pw", false)
	u, _ := url.Parse(c.URI)
	if got := u.Query().Get("sslmode"); got != "verify-full" || c.SSLMode != "verify-full" {
		t.Fatalf("sslmode = %q / %q", got, c.SSLMode)
	}
	j, _ := url.Parse(c.JDBCURL[len("jdbc:"):])
	if j.Query().Get("ssl") != "true" || j.Query().Get("sslmode") != "verify-full" {
		t.Fatalf("jdbcUrl %q lacks ssl=true&sslmode=verify-full", c.JDBCURL)
	}
	if c.CACertificate != testCA {
		t.Fatalf("ca_certificate = %q", c.CACertificate)
	}
	if c.URIVerifyFull != c.URI || c.DatabaseURLVerifyFull != c.URI || c.JDBCURLVerifyFull != c.JDBCURL {
		t.Fatalf("with verify-full the default, the verify-full forms differ from it: %q %q", c.URIVerifyFull, c.JDBCURLVerifyFull)
	}
}

// TestRequireConnectsWithoutAFileAndKeepsTheVerifyFullForms: with
// sslmode=require (the broker's default) the URLs carry no sslrootcert and
// pgx parses them as TLS only, without verification (libpq's require);
// beside ca_certificate, the verify-full forms differ only in sslmode.
func TestRequireConnectsWithoutAFileAndKeepsTheVerifyFullForms(t *testing.T) {
	noRootCert(t)
	c := New(Endpoint{Host: "db.example.com", Port: 35000, SSLMode: "require", CACertificate: testCA}, "db_abc", "u_1", "pw", false)
	const want = "postgres://u_1:pw@db.example.com:35000/db_abc?sslmode=require"
	if c.URI != want || c.DatabaseURL != want || c.SSLMode != "require" {
		t.Fatalf("uri %q DATABASE_URL %q sslmode %q, want %q", c.URI, c.DatabaseURL, c.SSLMode, want)
	}
	if c.URIVerifyFull != strings.Replace(want, "require", "verify-full", 1) || c.DatabaseURLVerifyFull != c.URIVerifyFull {
		t.Fatalf("uri_verify_full %q DATABASE_URL_VERIFY_FULL %q", c.URIVerifyFull, c.DatabaseURLVerifyFull)
	}
	j, _ := url.Parse(strings.TrimPrefix(c.JDBCURL, "jdbc:"))
	if j.Query().Get("ssl") != "true" || j.Query().Get("sslmode") != "require" {
		t.Fatalf("jdbcUrl %q: want ssl=true&sslmode=require", c.JDBCURL)
	}
	jv, _ := url.Parse(strings.TrimPrefix(c.JDBCURLVerifyFull, "jdbc:"))
	if jv.Query().Get("sslmode") != "verify-full" || jv.Query().Get("password") != "pw" {
		t.Fatalf("jdbcUrl_verify_full %q", c.JDBCURLVerifyFull)
	}
	cfg, err := pgconn.ParseConfig(c.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLSConfig == nil || !cfg.TLSConfig.InsecureSkipVerify || cfg.TLSConfig.VerifyPeerCertificate != nil || len(cfg.Fallbacks) != 0 {
		t.Fatalf("pgx reads DATABASE_URL as TLS %v, skip verify %v, %d fallbacks: want TLS only, unverified",
			cfg.TLSConfig != nil, cfg.TLSConfig != nil && cfg.TLSConfig.InsecureSkipVerify, len(cfg.Fallbacks))
	}
	raw, _ := json.Marshal(c)
	var fields map[string]any
	json.Unmarshal(raw, &fields)
	for _, key := range []string{"uri", "DATABASE_URL", "jdbcUrl", "sslmode", "ca_certificate", "uri_verify_full", "DATABASE_URL_VERIFY_FULL", "jdbcUrl_verify_full"} {
		if fields[key] == nil || fields[key] == "" {
			t.Errorf("credentials JSON lacks %s", key)
		}
	}
}

func TestNoCANoVerifyFullForms(t *testing.T) {
	c := New(Endpoint{Host: "db.example.com", Port: 35000, SSLMode: "require"}, "db_abc", "u_1", "pw", false)
	raw, _ := json.Marshal(c)
	if strings.Contains(string(raw), "verify_full") || strings.Contains(string(raw), "VERIFY_FULL") {
		t.Fatalf("credentials without a CA offer a verify-full form: %s", raw)
	}
}

// TestBusinessRequireURLIsOneTLSOnlyTargetPerGateway: the multi-host
// DATABASE_URL in require mode parses in pgx as both gateways, each TLS
// only and unverified, asking for a read-write session; the read-only and
// verify-full forms list both too.
func TestBusinessRequireURLIsOneTLSOnlyTargetPerGateway(t *testing.T) {
	noRootCert(t)
	c := New(Endpoint{Hosts: []string{"10.0.0.1", "10.0.0.2"}, Port: 35000, ReadOnlyPort: 35001, SSLMode: "require", CACertificate: testCA},
		"db_abc", "u_1", "pw", false)
	const want = "postgres://u_1:pw@10.0.0.1:35000,10.0.0.2:35000/db_abc?sslmode=require&target_session_attrs=read-write"
	if c.DatabaseURL != want || c.URIVerifyFull != strings.Replace(want, "require", "verify-full", 1) {
		t.Fatalf("DATABASE_URL %q uri_verify_full %q", c.DatabaseURL, c.URIVerifyFull)
	}
	if c.ReadOnlyURI != "postgres://u_1:pw@10.0.0.1:35001,10.0.0.2:35001/db_abc?sslmode=require" ||
		c.ReadOnlyURIVerifyFull != "postgres://u_1:pw@10.0.0.1:35001,10.0.0.2:35001/db_abc?sslmode=verify-full" {
		t.Fatalf("read_only_uri %q read_only_uri_verify_full %q", c.ReadOnlyURI, c.ReadOnlyURIVerifyFull)
	}
	if !strings.Contains(c.JDBCURLVerifyFull, "targetServerType=primary") || !strings.Contains(c.JDBCURLVerifyFull, "10.0.0.1:35000,10.0.0.2:35000") {
		t.Fatalf("jdbcUrl_verify_full %q", c.JDBCURLVerifyFull)
	}
	cfg, err := pgconn.ParseConfig(c.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	targets := append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
	if len(targets) != 2 || cfg.ValidateConnect == nil {
		t.Fatalf("pgx reads %d targets (validate read-write %v), want 2 with a read-write check", len(targets), cfg.ValidateConnect != nil)
	}
	for i, host := range []string{"10.0.0.1", "10.0.0.2"} {
		if tg := targets[i]; tg.Host != host || tg.Port != 35000 || tg.TLSConfig == nil || !tg.TLSConfig.InsecureSkipVerify {
			t.Errorf("target %d: %s:%d TLS %v, want %s:35000 TLS unverified", i, tg.Host, tg.Port, tg.TLSConfig != nil, host)
		}
	}
}

func TestSeveralGatewaysGiveMultiHostURIsAndAReadOnlyURI(t *testing.T) {
	c := New(Endpoint{Hosts: []string{"10.0.0.1", "10.0.0.2"}, Port: 35000, ReadOnlyPort: 35001, SSLMode: "verify-full"},
		"db_abc", "u_1", "pw", false)
	const want = "postgres://u_1:pw@10.0.0.1:35000,10.0.0.2:35000/db_abc?sslmode=verify-full&target_session_attrs=read-write"
	if c.URI != want || c.DatabaseURL != want {
		t.Fatalf("uri %q, want %q", c.URI, want)
	}
	if c.Host != "10.0.0.1" || len(c.Hosts) != 2 {
		t.Fatalf("host %q hosts %v", c.Host, c.Hosts)
	}
	if c.ReadOnlyURI != "postgres://u_1:pw@10.0.0.1:35001,10.0.0.2:35001/db_abc?sslmode=verify-full" {
		t.Fatalf("read_only_uri %q", c.ReadOnlyURI)
	}
	if want := "jdbc:postgresql://10.0.0.1:35000,10.0.0.2:35000/db_abc?"; len(c.JDBCURL) < len(want) || c.JDBCURL[:len(want)] != want {
		t.Fatalf("jdbcUrl %q", c.JDBCURL)
	}
	if u, err := url.Parse(c.JDBCURL[len("jdbc:"):]); err != nil || u.Query().Get("targetServerType") != "primary" {
		t.Fatalf("jdbcUrl %q lacks targetServerType=primary (%v)", c.JDBCURL, err)
	}
}
