// Package credentials builds the credentials a bind returns, in the format of
// DESIGN.md "Credentials returned by bind": a libpq URI (also as
// DATABASE_URL, the seeds' variable), a JDBC URL, and the parts.
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
	URI           string `json:"uri"`          // postgres://user:password@host:port/database?sslmode=...
	DatabaseURL   string `json:"DATABASE_URL"` // same as URI
	JDBCURL       string `json:"jdbcUrl"`      // jdbc:postgresql://host:port/database?user=...&password=...&ssl=...
	Host          string `json:"host"`
	Port          int    `json:"port"`
	Database      string `json:"database"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	SSLMode       string `json:"sslmode"` // libpq sslmode: disable, require, verify-full
	CACertificate string `json:"ca_certificate,omitempty"`
	ReadOnly      bool   `json:"read_only"`
	// Hosts are all the gateways' hosts when there are several (Business):
	// URI and JDBCURL list them all, Host is the first.
	Hosts []string `json:"hosts,omitempty"`
	// ReadOnlyURI reaches the standbys through the gateways' read-only
	// listener (Business plans); writes through it fail.
	ReadOnlyURI string `json:"read_only_uri,omitempty"`
}

// Endpoint is where applications reach an instance: its gateways.
type Endpoint struct {
	Host  string
	Hosts []string // when set: every gateway's host (Host is ignored), in the order clients try them
	Port  int
	// ReadOnlyPort is the gateways' read-only listener (routed to standbys); 0: none.
	ReadOnlyPort int
	SSLMode      string // libpq sslmode; anything but "disable" also turns SSL on in the JDBC URL
	// CACertificate is the PEM of the CA that signed the server's certificate;
	// clients verifying it (verify-full) need it in a file (libpq and JDBC sslrootcert).
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
	query := url.Values{"sslmode": {e.SSLMode}}
	jdbcQ := jdbcQuery(user, password, e.SSLMode)
	if len(hosts) > 1 {
		query.Set("target_session_attrs", "read-write")
		jdbcQ.Set("targetServerType", "primary")
	}
	uri := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     hostList(hosts, e.Port),
		Path:     "/" + database,
		RawQuery: query.Encode(),
	}
	jdbc := url.URL{
		Scheme:   "postgresql",
		Host:     hostList(hosts, e.Port),
		Path:     "/" + database,
		RawQuery: jdbcQ.Encode(),
	}
	c := Credentials{
		URI:           uri.String(),
		DatabaseURL:   uri.String(),
		JDBCURL:       "jdbc:" + jdbc.String(),
		Host:          hosts[0],
		Port:          e.Port,
		Database:      database,
		Username:      user,
		Password:      password,
		SSLMode:       e.SSLMode,
		CACertificate: e.CACertificate,
		ReadOnly:      readOnly,
	}
	if len(hosts) > 1 {
		c.Hosts = hosts
	}
	if e.ReadOnlyPort > 0 {
		ro := url.URL{
			Scheme:   "postgres",
			User:     url.UserPassword(user, password),
			Host:     hostList(hosts, e.ReadOnlyPort),
			Path:     "/" + database,
			RawQuery: url.Values{"sslmode": {e.SSLMode}}.Encode(),
		}
		c.ReadOnlyURI = ro.String()
	}
	return c
}

// hostList joins host:port for each host with commas.
func hostList(hosts []string, port int) string {
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = net.JoinHostPort(h, strconv.Itoa(port))
	}
	return strings.Join(parts, ",")
}

// jdbcQuery: pgjdbc reads ssl and sslmode (same values as libpq's).
func jdbcQuery(user, password, sslMode string) url.Values {
	q := url.Values{"user": {user}, "password": {password}, "ssl": {strconv.FormatBool(sslMode != "disable")}}
	if sslMode != "disable" {
		q.Set("sslmode", sslMode)
	}
	return q
}
