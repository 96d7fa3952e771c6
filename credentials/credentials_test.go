package credentials

import (
	"net/url"
	"testing"
)

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
	const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	c := New(Endpoint{Host: "db.example.com", Port: 35000, SSLMode: "verify-full", CACertificate: ca}, "db_abc", "u_1", "pw", false)
	u, _ := url.Parse(c.URI)
	if got := u.Query().Get("sslmode"); got != "verify-full" || c.SSLMode != "verify-full" {
		t.Fatalf("sslmode = %q / %q", got, c.SSLMode)
	}
	j, _ := url.Parse(c.JDBCURL[len("jdbc:"):])
	if j.Query().Get("ssl") != "true" || j.Query().Get("sslmode") != "verify-full" {
		t.Fatalf("jdbcUrl %q lacks ssl=true&sslmode=verify-full", c.JDBCURL)
	}
	if c.CACertificate != ca {
		t.Fatalf("ca_certificate = %q", c.CACertificate)
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
