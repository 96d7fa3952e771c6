package pgadmin

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	for _, name := range names {
		if _, err := db.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+ident(name)+" CASCADE"); err != nil {
			return fmt.Errorf("create extension %s: %w", name, err)
		}
	}
	return nil
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
