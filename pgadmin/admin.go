// Package pgadmin administers one instance's PostgreSQL as its superuser:
// the database, its owner and reader roles, one login role per binding, and
// size queries. Grants follow the seeds' "Database Users" section: read-write
// users may do everything the database owner may; read-only users may connect
// and SELECT every table and sequence, present and future.
package pgadmin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Names are the PostgreSQL objects of one instance.
type Names struct {
	Database string // the application database; the seeds name its owner after it
	Owner    string // NOLOGIN role owning the database and schema public; read-write roles act as it
	Reader   string // NOLOGIN group holding the read-only grants
}

// Admin connects to an instance as its superuser. The zero value is unusable;
// use New.
type Admin struct {
	host     string
	port     int
	user     string
	password string
	tls      *tls.Config
}

// New returns an Admin for the instance reachable at host:port. With
// tlsConfig every connection uses TLS checked by it (the instance's server
// certificate); nil means plaintext.
func New(host string, port int, user, password string, tlsConfig *tls.Config) Admin {
	return Admin{host: host, port: port, user: user, password: password, tls: tlsConfig}
}

func (a Admin) connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg, err := a.config(database)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		// pgx errors may quote the config; keep only the cause, never the password.
		return nil, fmt.Errorf("connect to %s as %s: %w", net.JoinHostPort(a.host, strconv.Itoa(a.port)), a.user, redact(err, a.password))
	}
	return conn, nil
}

// config is how connect logs in to database: TLS checked by a.tls and, with
// it, SCRAM bound to the TLS channel (channel_binding=require: a man in the
// middle holding another certificate cannot relay the login; issue 12,
// hole 5).
func (a Admin) config(database string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = a.host, uint16(a.port)
	cfg.User, cfg.Password, cfg.Database = a.user, a.password, database
	cfg.TLSConfig = a.tls
	if a.tls != nil {
		cfg.ChannelBinding = "require"
	}
	cfg.Fallbacks = nil
	cfg.ConnectTimeout = 5 * time.Second
	cfg.RuntimeParams["application_name"] = "pgbroker"
	// The superuser resolves no name in a schema a tenant can write: not
	// public, not a schema a tenant named after it ("$user"), and its own
	// temporary schema last (issue 12, hole 2).
	cfg.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	return cfg, nil
}

// Ping opens a connection and runs SELECT 1.
func (a Admin) Ping(ctx context.Context) error {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// ServerCertificate opens a connection and returns the certificate the server
// presented in the TLS handshake. Errors: the connection's, or a plaintext
// Admin.
func (a Admin) ServerCertificate(ctx context.Context) (*x509.Certificate, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		return nil, errors.New("the connection does not use TLS")
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("the server presented no certificate")
	}
	return certs[0], nil
}

// EnsureDatabase creates, when missing, the owner and reader roles and the
// database, and (re)applies their grants. Idempotent.
func (a Admin) EnsureDatabase(ctx context.Context, n Names) error {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, role := range []string{n.Owner, n.Reader} {
		if err := ensureRole(ctx, conn, role, "NOLOGIN"); err != nil {
			return err
		}
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, n.Database).Scan(&exists); err != nil {
		return fmt.Errorf("look up database: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(n.Database)+" OWNER "+ident(n.Owner)); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
	}
	// No one but the owner's members and the readers may connect to the
	// application database, and nobody but the superuser to the others.
	stmts := []string{
		"REVOKE ALL ON DATABASE " + ident(n.Database) + " FROM PUBLIC",
		"GRANT CONNECT ON DATABASE " + ident(n.Database) + " TO " + ident(n.Reader),
		"REVOKE CONNECT ON DATABASE postgres FROM PUBLIC",
		"REVOKE CONNECT ON DATABASE template1 FROM PUBLIC",
	}
	if err := execAll(ctx, conn, stmts); err != nil {
		return err
	}
	db, err := a.connect(ctx, n.Database)
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	if err := ensureExtensionSchema(ctx, db, n); err != nil {
		return err
	}
	o, r := ident(n.Owner), ident(n.Reader)
	return execAll(ctx, db, []string{
		"ALTER SCHEMA public OWNER TO " + o,
		"GRANT USAGE ON SCHEMA public TO " + r,
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + r,
		"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO " + r,
		"ALTER DEFAULT PRIVILEGES FOR ROLE " + o + " IN SCHEMA public GRANT SELECT ON TABLES TO " + r,
		"ALTER DEFAULT PRIVILEGES FOR ROLE " + o + " IN SCHEMA public GRANT SELECT ON SEQUENCES TO " + r,
	})
}

// EnsureLoginRole creates the login role (or resets its password when it
// exists) with a SCRAM-SHA-256 verifier of password, and makes it a read-write
// user (member of the owner role, acting as it, so every object it creates
// belongs to the owner and stays when the role is dropped) or a read-only user
// (member of the reader group). Idempotent.
func (a Admin) EnsureLoginRole(ctx context.Context, n Names, role, password string, readOnly bool) error {
	verifier, err := ScramVerifier(password)
	if err != nil {
		return err
	}
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := ensureRole(ctx, conn, role, "LOGIN"); err != nil {
		return err
	}
	stmts := []string{"ALTER ROLE " + ident(role) + " LOGIN PASSWORD " + literal(verifier)}
	return execAll(ctx, conn, append(stmts, grants(n, role, readOnly)...))
}

// grants make role a read-write user (member of the owner role, acting as it)
// or a read-only one (member of the reader group).
func grants(n Names, role string, readOnly bool) []string {
	r := ident(role)
	if readOnly {
		return []string{"GRANT " + ident(n.Reader) + " TO " + r}
	}
	return []string{
		"GRANT " + ident(n.Owner) + " TO " + r,
		"ALTER ROLE " + r + " IN DATABASE " + ident(n.Database) + " SET role = " + literal(n.Owner),
	}
}

// DropLoginRole ends the role's sessions, hands what it owns to the owner
// role, and drops it. Dropping a missing role is not an error.
func (a Admin) DropLoginRole(ctx context.Context, n Names, role string) error {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if exists, err := roleExists(ctx, conn, role); err != nil || !exists {
		return err
	}
	r := ident(role)
	if _, err := conn.Exec(ctx, "ALTER ROLE "+r+" NOLOGIN"); err != nil {
		return fmt.Errorf("disable login: %w", err)
	}
	if err := endSessions(ctx, conn, role); err != nil {
		return err
	}
	db, err := a.connect(ctx, n.Database)
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	if err := execAll(ctx, db, []string{
		"REASSIGN OWNED BY " + r + " TO " + ident(n.Owner),
		"DROP OWNED BY " + r,
	}); err != nil {
		return err
	}
	return execAll(ctx, conn, []string{"DROP OWNED BY " + r, "DROP ROLE IF EXISTS " + r})
}

// DataSize returns the bytes used by every database of the instance
// (sum of pg_database_size).
func (a Admin) DataSize(ctx context.Context) (int64, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var size int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(pg_database_size(datname)), 0)::bigint FROM pg_database`).Scan(&size); err != nil {
		return 0, fmt.Errorf("measure data size: %w", err)
	}
	return size, nil
}

// roleExists reports whether role exists in the cluster.
func roleExists(ctx context.Context, conn *pgx.Conn, role string) (bool, error) {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up role: %w", err)
	}
	return exists, nil
}

// endSessions terminates every session whose session user is role.
func endSessions(ctx context.Context, conn *pgx.Conn, role string) error {
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, role); err != nil {
		return fmt.Errorf("end sessions of role: %w", err)
	}
	return nil
}

func ensureRole(ctx context.Context, conn *pgx.Conn, role, login string) error {
	if exists, err := roleExists(ctx, conn, role); err != nil || exists {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE ROLE "+ident(role)+" "+login); err != nil && !isDuplicate(err) {
		return fmt.Errorf("create role %s: %w", role, err)
	}
	return nil
}

func execAll(ctx context.Context, conn *pgx.Conn, stmts []string) error {
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			// The only literal ever sent is a SCRAM verifier, not a password,
			// but name the statement by its first words only.
			return fmt.Errorf("%s: %w", firstWords(s, 3), err)
		}
	}
	return nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[:n]
	}
	return strings.ToLower(strings.Join(f, " "))
}

// HBAState is how the instance's pg_hba.conf stands, on disk and loaded.
type HBAState struct {
	// HostTypes: SELECT DISTINCT type FROM pg_hba_file_rules for the
	// non-replication TCP rules of the file on disk ("host", "hostssl").
	HostTypes []string
	// FileModified: pg_stat_file(current_setting('hba_file')).modification (whole seconds).
	FileModified time.Time
	// LoadedAt: pg_conf_load_time(), when the server last read its configuration.
	LoadedAt time.Time
}

// TLSOnly reports whether the file on disk lets only TLS connections in.
func (s HBAState) TLSOnly() bool {
	for _, t := range s.HostTypes {
		if t != "hostssl" {
			return false
		}
	}
	return len(s.HostTypes) > 0
}

// HBA reads the state of pg_hba.conf (superuser: pg_hba_file_rules and pg_stat_file).
func (a Admin) HBA(ctx context.Context) (HBAState, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return HBAState{}, err
	}
	defer conn.Close(ctx)
	var s HBAState
	err = conn.QueryRow(ctx, `SELECT
			coalesce((SELECT array_agg(DISTINCT type ORDER BY type) FROM pg_hba_file_rules
				WHERE type LIKE 'host%' AND NOT ('replication' = ANY (database))), '{}'),
			(pg_stat_file(current_setting('hba_file'))).modification,
			pg_conf_load_time()`).Scan(&s.HostTypes, &s.FileModified, &s.LoadedAt)
	if err != nil {
		return HBAState{}, fmt.Errorf("read pg_hba.conf state: %w", err)
	}
	return s, nil
}

// InRecovery reports whether the server is still replaying WAL
// (SELECT pg_is_in_recovery()): true during a point-in-time restore until it promotes.
func (a Admin) InRecovery(ctx context.Context) (bool, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var in bool
	err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&in)
	return in, err
}

// HasDataFile reports whether the file name (relative to the data
// directory, e.g. "pgbroker-pitr-<operation id>") exists in the data
// directory of the server the admin reaches (pg_stat_file(name, true)).
func (a Admin) HasDataFile(ctx context.Context, name string) (bool, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var found bool
	err = conn.QueryRow(ctx, "SELECT (pg_stat_file($1, true)).size IS NOT NULL", name).Scan(&found)
	return found, err
}
