package pgadmin

import (
	"context"
	"fmt"
)

// AdoptCluster makes a cluster restored from another instance's stanza
// (provision parameter restore_from.point_in_time) this instance's: the
// source's database and its owner and reader roles (from) are renamed to
// this instance's (to), every login role but the admin's (the source's
// bindings and users, whose passwords must not open the copy) is dropped
// with what it owns handed to the owner role, and the admin role's password
// becomes adminPassword (sent as a SCRAM-SHA-256 verifier). Connects as the
// admin role. Idempotent: names already renamed are left. Errors name the
// statement by its first words, never a password.
func (a Admin) AdoptCluster(ctx context.Context, from, to Names, adminPassword string) error {
	verifier, err := ScramVerifier(adminPassword)
	if err != nil {
		return err
	}
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	exists := func(catalog, column, name string) (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+catalog+" WHERE "+column+" = $1)", name).Scan(&ok)
		if err != nil {
			return false, fmt.Errorf("look up %s: %w", name, err)
		}
		return ok, nil
	}
	renames := []struct{ kind, catalog, column, from, to string }{
		{"DATABASE", "pg_database", "datname", from.Database, to.Database},
		{"ROLE", "pg_roles", "rolname", from.Owner, to.Owner},
		{"ROLE", "pg_roles", "rolname", from.Reader, to.Reader},
	}
	for _, r := range renames {
		if r.from == r.to {
			continue
		}
		had, err := exists(r.catalog, r.column, r.from)
		if err != nil {
			return err
		}
		if !had {
			continue
		}
		if r.kind == "DATABASE" {
			if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, r.from); err != nil {
				return fmt.Errorf("end sessions of database %s: %w", r.from, err)
			}
		}
		if _, err := conn.Exec(ctx, "ALTER "+r.kind+" "+ident(r.from)+" RENAME TO "+ident(r.to)); err != nil {
			return fmt.Errorf("rename %s %s to %s: %w", r.kind, r.from, r.to, err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname <> current_user AND rolname !~ '^pg_' ORDER BY rolname`)
	if err != nil {
		return fmt.Errorf("list login roles: %w", err)
	}
	var logins []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("list login roles: %w", err)
		}
		logins = append(logins, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list login roles: %w", err)
	}
	for _, role := range logins {
		if err := a.DropLoginRole(ctx, to, role); err != nil {
			return fmt.Errorf("drop login role %s of the source: %w", role, err)
		}
	}
	return execAll(ctx, conn, []string{"ALTER ROLE CURRENT_USER PASSWORD " + literal(verifier)})
}
