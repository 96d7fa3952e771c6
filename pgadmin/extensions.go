package pgadmin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgbroker/pgbroker/extensions"
)

// The SQL side of the extensions users enable: the allow-list and its rules
// are package extensions'.

// Extensions returns the extensions created in the instance's database
// (SELECT extname, extversion FROM pg_extension), plpgsql excluded, by name.
func (a Admin) Extensions(ctx context.Context, n Names) ([]extensions.InstalledExtension, error) {
	db, err := a.connect(ctx, n.Database)
	if err != nil {
		return nil, err
	}
	defer db.Close(ctx)
	rows, err := db.Query(ctx, `SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY extname`)
	if err != nil {
		return nil, fmt.Errorf("list extensions: %w", err)
	}
	defer rows.Close()
	var out []extensions.InstalledExtension
	for rows.Next() {
		var e extensions.InstalledExtension
		if err := rows.Scan(&e.Name, &e.Version); err != nil {
			return nil, fmt.Errorf("list extensions: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EnableExtensions runs CREATE EXTENSION IF NOT EXISTS … CASCADE for each
// name in the instance's database, as the superuser (so untrusted contrib
// extensions work too); what CASCADE adds (cube for earthdistance) comes along.
// Names must have passed extensions.CheckExtensions. Idempotent.
func (a Admin) EnableExtensions(ctx context.Context, n Names, names []string) error {
	if len(names) == 0 {
		return nil
	}
	db, err := a.connect(ctx, n.Database)
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	if err := ensureExtensionSchema(ctx, db, n); err != nil {
		return err
	}
	for _, name := range names {
		// The extension's script runs as the superuser with search_path set
		// to the target schema, which no tenant can write; CASCADE puts the
		// extensions it requires there too.
		if _, err := db.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+ident(name)+" WITH SCHEMA "+ident(ExtensionSchema)+" CASCADE"); err != nil {
			return fmt.Errorf("create extension %s: %w", name, err)
		}
	}
	return nil
}

// ExtensionSchema holds the extensions the broker creates in an instance's
// database. The superuser owns it and tenants may only use it (USAGE), so no
// object a tenant plants can be picked up by an extension's script, which
// runs as the superuser (issue 12, hole 2). The database's search_path ends
// with it, so applications call extension functions unqualified.
const ExtensionSchema = "extensions"

// ensureExtensionSchema creates ExtensionSchema in the database db is
// connected to, owned by the superuser, usable (not writable) by the owner
// and reader roles, and puts it at the end of the database's search_path.
// Errors when a schema of that name exists and belongs to anyone else (a
// tenant made it before the broker did): its extensions would then run a
// tenant's objects.
func ensureExtensionSchema(ctx context.Context, db *pgx.Conn, n Names) error {
	s := ident(ExtensionSchema)
	if _, err := db.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s); err != nil {
		return fmt.Errorf("create schema %s: %w", ExtensionSchema, err)
	}
	var owner string
	if err := db.QueryRow(ctx, `SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace WHERE nspname = $1`,
		ExtensionSchema).Scan(&owner); err != nil {
		return fmt.Errorf("read the owner of schema %s: %w", ExtensionSchema, err)
	}
	var me string
	if err := db.QueryRow(ctx, `SELECT current_user`).Scan(&me); err != nil {
		return err
	}
	if owner != me {
		return fmt.Errorf("schema %s belongs to %s, not the broker's superuser: rename or drop it, then try again", ExtensionSchema, owner)
	}
	return execAll(ctx, db, []string{
		"REVOKE ALL ON SCHEMA " + s + " FROM PUBLIC",
		"GRANT USAGE ON SCHEMA " + s + " TO " + ident(n.Owner) + ", " + ident(n.Reader),
		"ALTER DATABASE " + ident(n.Database) + ` SET search_path = "$user", public, ` + s,
	})
}

// DisableExtensions runs DROP EXTENSION IF EXISTS for each name, without
// CASCADE: an extension that tables or other extensions use stays, and the
// error wraps extensions.ErrExtensionInUse with PostgreSQL's detail. Idempotent.
func (a Admin) DisableExtensions(ctx context.Context, n Names, names []string) error {
	if len(names) == 0 {
		return nil
	}
	db, err := a.connect(ctx, n.Database)
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	for _, name := range names {
		if _, err := db.Exec(ctx, "DROP EXTENSION IF EXISTS "+ident(name)); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "2BP01" {
				return fmt.Errorf("drop extension %s: %w: %s", name, extensions.ErrExtensionInUse, oneLine(pgErr.Detail))
			}
			return fmt.Errorf("drop extension %s: %w", name, err)
		}
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
