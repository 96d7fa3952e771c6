package pgadmin

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgbroker/pgbroker/backends"
)

// tenantRoles selects the oids of the instance's users ($1 the owner role,
// $2 the reader group): the owner and the members of either (Users).
const tenantRoles = `SELECT r.oid FROM pg_authid r WHERE r.rolname = $1
	OR EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid
		WHERE m.member = r.oid AND g.rolname IN ($1, $2))`

// Backends lists the sessions of the instance's users, oldest transaction
// or query first.
func (a Admin) Backends(ctx context.Context, n Names) ([]backends.Backend, error) {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT pid, usename, coalesce(application_name, ''), coalesce(host(client_addr), ''), coalesce(state, ''),
			backend_start, xact_start, query_start, coalesce(query, '')
		FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND usesysid IN (`+tenantRoles+`)
		ORDER BY coalesce(xact_start, query_start, backend_start), pid`, n.Owner, n.Reader)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (backends.Backend, error) {
		var b backends.Backend
		err := row.Scan(&b.PID, &b.Username, &b.Application, &b.Client, &b.State,
			&b.BackendStart, &b.TransactionStart, &b.QueryStart, &b.Query)
		return b, err
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return all, nil
}

// CancelBackend cancels the running query of session pid
// (pg_cancel_backend), or with terminate ends the session
// (pg_terminate_backend), only when pid is a client backend of one of the
// instance's users: the check and the signal are one statement. Errors:
// backends.ErrNotFound.
func (a Admin) CancelBackend(ctx context.Context, n Names, pid int32, terminate bool) error {
	conn, err := a.connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	signal := "pg_cancel_backend(pid)"
	if terminate {
		signal = "pg_terminate_backend(pid)"
	}
	var done bool
	err = conn.QueryRow(ctx, `SELECT `+signal+` FROM pg_stat_activity
		WHERE pid = $3 AND backend_type = 'client backend' AND usesysid IN (`+tenantRoles+`)`, n.Owner, n.Reader, pid).Scan(&done)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && !done):
		return backends.ErrNotFound
	case err != nil:
		return fmt.Errorf("signal session %d: %w", pid, err)
	}
	return nil
}
