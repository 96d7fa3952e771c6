// Package credentials builds the credentials a bind returns, in the format of
// DESIGN.md "Credentials returned by bind": a libpq URI (also as
// DATABASE_URL, the seeds' variable), a JDBC URL, and the parts.
package credentials

import (
	"net"
	"net/url"
	"strconv"
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
}

// Endpoint is where applications reach an instance: its gateway.
type Endpoint struct {
	Host    string
	Port    int
	SSLMode string // libpq sslmode; anything but "disable" also turns SSL on in the JDBC URL
	// CACertificate is the PEM of the CA that signed the server's certificate;
	// clients verifying it (verify-full) need it in a file (libpq and JDBC sslrootcert).
	CACertificate string
}

// New returns the credentials of user on database behind e.
func New(e Endpoint, database, user, password string, readOnly bool) Credentials {
	hostPort := net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
	uri := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     hostPort,
		Path:     "/" + database,
		RawQuery: url.Values{"sslmode": {e.SSLMode}}.Encode(),
	}
	jdbc := url.URL{
		Scheme:   "postgresql",
		Host:     hostPort,
		Path:     "/" + database,
		RawQuery: jdbcQuery(user, password, e.SSLMode).Encode(),
	}
	return Credentials{
		URI:           uri.String(),
		DatabaseURL:   uri.String(),
		JDBCURL:       "jdbc:" + jdbc.String(),
		Host:          e.Host,
		Port:          e.Port,
		Database:      database,
		Username:      user,
		Password:      password,
		SSLMode:       e.SSLMode,
		CACertificate: e.CACertificate,
		ReadOnly:      readOnly,
	}
}

// jdbcQuery: pgjdbc reads ssl and sslmode (same values as libpq's).
func jdbcQuery(user, password, sslMode string) url.Values {
	q := url.Values{"user": {user}, "password": {password}, "ssl": {strconv.FormatBool(sslMode != "disable")}}
	if sslMode != "disable" {
		q.Set("sslmode", sslMode)
	}
	return q
}
