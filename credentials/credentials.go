// Package credentials builds the credentials a bind returns, in the format of
// DESIGN.md "Credentials returned by bind": a libpq URI (also as
// DATABASE_URL, the seeds' variable), a JDBC URL, and the parts; beside
// them, the same URLs in sslmode=verify-full for applications that check
// the server against ca_certificate.
package credentials

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Credentials are the OSB binding credentials (OSB 2.17 "Binding" response
// "credentials" object).
type Credentials struct {
	URI           string `json:"uri"`          // postgres://user:password@host:port/database?sslmode=<SSLMode>
	DatabaseURL   string `json:"DATABASE_URL"` // same as URI
	JDBCURL       string `json:"jdbcUrl"`      // jdbc:postgresql://host:port/database?user=...&password=...&ssl=...&sslmode=<SSLMode>
	Host          string `json:"host"`
	Port          int    `json:"port"`
	Database      string `json:"database"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	SSLMode       string `json:"sslmode"` // libpq sslmode of URI, DatabaseURL, JDBCURL and ReadOnlyURI: disable, require, verify-full
	CACertificate string `json:"ca_certificate,omitempty"`
	// The verify-full forms: the URLs above with sslmode=verify-full, for
	// applications that check the server's chain (against CACertificate,
	// written to a file named by sslrootcert) and its name. Set whenever
	// CACertificate is, whatever SSLMode says.
	URIVerifyFull         string `json:"uri_verify_full,omitempty"`
	DatabaseURLVerifyFull string `json:"DATABASE_URL_VERIFY_FULL,omitempty"` // same as URIVerifyFull
	JDBCURLVerifyFull     string `json:"jdbcUrl_verify_full,omitempty"`
	ReadOnly              bool   `json:"read_only"`
	// Hosts are all the gateways' hosts when there are several (Business):
	// URI and JDBCURL list them all, Host is the first.
	Hosts []string `json:"hosts,omitempty"`
	// ReadOnlyURI reaches the standbys through the gateways' read-only
	// listener (Business plans); writes through it fail.
	ReadOnlyURI           string `json:"read_only_uri,omitempty"`
	ReadOnlyURIVerifyFull string `json:"read_only_uri_verify_full,omitempty"` // ReadOnlyURI with sslmode=verify-full
}

// Endpoint is where applications reach an instance: its gateways.
type Endpoint struct {
	Host  string
	Hosts []string // when set: every gateway's host (Host is ignored), in the order clients try them
	Port  int
	// ReadOnlyPort is the gateways' read-only listener (routed to standbys); 0: none.
	ReadOnlyPort int
	SSLMode      string // libpq sslmode of the default URLs; anything but "disable" also turns SSL on in the JDBC URL
	// CACertificate is the PEM of the CA that signed the server's certificate;
	// clients verifying it (verify-full) need it in a file (libpq and JDBC
	// sslrootcert). When set, the credentials also carry the verify-full forms.
	CACertificate string
}

// New returns the credentials of user on database behind e. With several
// hosts, the URIs list them all (libpq and pgx multi-host syntax
// "h1:port,h2:port", pgjdbc likewise): a client tries them in order, so the
// credentials keep working while any gateway is alive, and
// target_session_attrs=read-write (pgjdbc: targetServerType=primary) skips
// a host that would hand out a read-only session.
func New(e Endpoint, database, user, password string, readOnly bool) Credentials {
	hosts := e.Hosts
	if len(hosts) == 0 {
		hosts = []string{e.Host}
	}
	u := urls{hosts: hosts, database: database, user: user, password: password}
	c := Credentials{
		URI:           u.libpq(e.Port, e.SSLMode, len(hosts) > 1),
		JDBCURL:       u.jdbc(e.Port, e.SSLMode),
		Host:          hosts[0],
		Port:          e.Port,
		Database:      database,
		Username:      user,
		Password:      password,
		SSLMode:       e.SSLMode,
		CACertificate: e.CACertificate,
		ReadOnly:      readOnly,
	}
	c.DatabaseURL = c.URI
	if len(hosts) > 1 {
		c.Hosts = hosts
	}
	if e.ReadOnlyPort > 0 {
		c.ReadOnlyURI = u.libpq(e.ReadOnlyPort, e.SSLMode, false)
	}
	if e.CACertificate != "" {
		c.URIVerifyFull = u.libpq(e.Port, verifyFull, len(hosts) > 1)
		c.DatabaseURLVerifyFull = c.URIVerifyFull
		c.JDBCURLVerifyFull = u.jdbc(e.Port, verifyFull)
		if e.ReadOnlyPort > 0 {
			c.ReadOnlyURIVerifyFull = u.libpq(e.ReadOnlyPort, verifyFull, false)
		}
	}
	return c
}

const verifyFull = "verify-full"

// urls builds the connection URLs of one login on one database.
type urls struct {
	hosts                    []string
	database, user, password string
}

// libpq returns postgres://user:password@hosts/database?sslmode=..., with
// target_session_attrs=read-write when primaryOnly.
func (u urls) libpq(port int, sslMode string, primaryOnly bool) string {
	q := url.Values{"sslmode": {sslMode}}
	if primaryOnly {
		q.Set("target_session_attrs", "read-write")
	}
	return (&url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(u.user, u.password),
		Host:     hostList(u.hosts, port),
		Path:     "/" + u.database,
		RawQuery: q.Encode(),
	}).String()
}

// jdbc returns the pgjdbc URL, with targetServerType=primary when there
// are several hosts.
func (u urls) jdbc(port int, sslMode string) string {
	q := jdbcQuery(u.user, u.password, sslMode)
	if len(u.hosts) > 1 {
		q.Set("targetServerType", "primary")
	}
	return "jdbc:" + (&url.URL{
		Scheme:   "postgresql",
		Host:     hostList(u.hosts, port),
		Path:     "/" + u.database,
		RawQuery: q.Encode(),
	}).String()
}

// hostList joins host:port for each host with commas.
func hostList(hosts []string, port int) string {
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = net.JoinHostPort(h, strconv.Itoa(port))
	}
	return strings.Join(parts, ",")
}

// jdbcQuery: pgjdbc reads ssl and sslmode (same values as libpq's). Its
// sslmode=require accepts any server certificate (LibPQFactory's
// NonValidatingTM) and needs no file; verify-full reads sslrootcert.
func jdbcQuery(user, password, sslMode string) url.Values {
	q := url.Values{"user": {user}, "password": {password}, "ssl": {strconv.FormatBool(sslMode != "disable")}}
	if sslMode != "disable" {
		q.Set("sslmode", sslMode)
	}
	return q
}
